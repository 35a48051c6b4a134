"""Which bone of a rig is which canonical joint, without bpy.

Two independent detectors, combined by ``detect_bone_map``:

- Names: every preset of ``bonemaps.PRESETS`` is matched with fuzzy keys. A bone name becomes (side, base):
  the namespace ("mixamorig:") goes, camelCase and digits are split, case and separators do not matter,
  numbers lose their leading zeros, the side token (l/r/left/right in any position: "_L", ".l", "Left...",
  "J_Bip_L_...", "hand_l") is taken out; a prefix shared by most bones ("m_avg_", "Character1_") is tried
  without. Presets are ranked by the weighted share of their joints found (arms and spine count more than
  fingers), then by marker bones, exact names, constrained bones (controls before constrained deform
  bones) and priority.
- Topology (needs rest positions): the hips are the bone where a chain going up and two chains reaching
  the floor branch; the spine runs up to the bone where the two arms branch, then neck and head; each arm
  is split into collar, upper arm, forearm and hand by where its joints sit (lateral distance, arc length);
  the hand is where three or more finger chains start, and the fingers are told apart by their position
  (the thumb reaches furthest forward); legs by height. Facing comes from side names, then the feet (toes
  point forward), then Blender's convention (-Y).

Names win when a preset maps every required joint; topology then fills joints the names missed, if it
agrees with the names on the joints both mapped. Otherwise topology alone, or a RigError that says what is
missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..inference.errors import RigError
from ..inference.skeleton import JOINT_NAMES
from .bonemaps import PRESETS, BoneMap, BoneMapPreset, joint_weight, missing_required
from .solve import RigRest

# --------------------------------------------------------------------------------------------------------
# Names

_NAMESPACE_TOKEN = re.compile(r"^mixamorig\d*$")
_SIDE_TOKENS = {"l": "L", "left": "L", "r": "R", "right": "R"}


def name_tokens(name: str) -> list[str]:
    return list(_name_tokens(name))


@lru_cache(maxsize=8192)
def _name_tokens(name: str) -> tuple[str, ...]:
    """'mixamorig:LeftHandIndex1' -> ['left', 'hand', 'index', '1']; 'DEF-upper_arm.L.001' -> ['def', 'upper',
    'arm', 'l', '1']; 'index_01_l' -> ['index', '1', 'l']."""
    name = name.rsplit(":", 1)[-1]
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1 \2", s)
    out: list[str] = []
    for raw in re.split(r"[^A-Za-z0-9]+", s):
        if not raw:
            continue
        t = raw.lower()
        if t.isdigit():
            out.append(str(int(t)))
            continue
        for side in ("left", "right"):  # fused in all-caps names: LEFTHAND, HANDLEFT
            if t.startswith(side) and len(t) > len(side) + 1:
                out += [side, t[len(side):]]
                break
            if t.endswith(side) and len(t) > len(side) + 1:
                out += [t[: -len(side)], side]
                break
        else:
            out.append(t)
    return tuple(t for t in out if not _NAMESPACE_TOKEN.match(t))


def bone_key(name: str, strip: Sequence[str] = ()) -> tuple[str, str]:
    """(side 'L'/'R'/'', base): names that differ only in case, separators, side spelling or a namespace
    get the same key. strip: leading tokens to drop (a prefix common to the rig's bones)."""
    tokens = name_tokens(name)
    if strip and tokens[: len(strip)] == list(strip) and len(tokens) > len(strip):
        tokens = tokens[len(strip):]
    side = ""
    rest: list[str] = []
    for t in tokens:
        if not side and t in _SIDE_TOKENS:
            side = _SIDE_TOKENS[t]
        else:
            rest.append(t)
    return side, "".join(rest)


def common_prefix(names: Iterable[str], share: float = 0.7) -> tuple[str, ...]:
    """The longest leading token sequence shared by at least `share` of the names (e.g. ('m', 'avg'))."""
    token_lists = [name_tokens(n) for n in names]
    if not token_lists:
        return ()
    prefix: tuple[str, ...] = ()
    while True:
        counts: dict[tuple[str, ...], int] = {}
        for toks in token_lists:
            if len(toks) > len(prefix) + 1 and tuple(toks[: len(prefix)]) == prefix:
                key = tuple(toks[: len(prefix) + 1])
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return prefix
        best, n = max(counts.items(), key=lambda kv: kv[1])
        if n < share * len(token_lists):
            return prefix
        prefix = best


class NameIndex:
    """Bone lookup by exact name or fuzzy key."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.exact = set(self.names)
        self.prefix = common_prefix(self.names)
        self.by_key: dict[tuple[str, str], str] = {}
        for n in self.names:
            self.by_key.setdefault(bone_key(n), n)
        if self.prefix:
            for n in self.names:
                self.by_key.setdefault(bone_key(n, self.prefix), n)

    def spelled_alike(self, rig_bone: str, preset_bone: str, preset_prefix: Sequence[str] = ()) -> bool:
        """Same tokens, side spelling included ('m_avg_L_Hip' and 'L_Hip', not 'left_hip')."""
        a = name_tokens(rig_bone)
        if self.prefix and a[: len(self.prefix)] == list(self.prefix):
            a = a[len(self.prefix):]
        b = name_tokens(preset_bone)
        return a == b or (bool(preset_prefix) and a == b[len(preset_prefix):])

    def find(self, bone: str, preset_prefix: Sequence[str] = ()) -> tuple[str | None, bool]:
        """(the rig's bone for a preset bone name, exact match?)."""
        if bone in self.exact:
            return bone, True
        for key in (bone_key(bone), bone_key(bone, preset_prefix)):
            if key[1] and key in self.by_key:
                return self.by_key[key], False
        return None, False


@dataclass
class PresetMatch:
    preset: BoneMapPreset
    joints: dict[str, str]
    score: float  # weighted share of the preset's joints found
    exact: int
    markers: int
    constrained: float  # share of the matched bones that carry constraints
    spelled: int = 0  # matches whose tokens agree, side spelling included

    @property
    def rank(self) -> tuple:
        return (round(self.score - 0.5 * self.constrained, 4), self.markers, self.exact, self.spelled,
                self.preset.priority)


_PRESET_PREFIX: dict[str, tuple[str, ...]] = {}


def match_preset(preset: BoneMapPreset, index: NameIndex, constrained: dict[str, bool] | None = None) -> PresetMatch:
    if preset.name not in _PRESET_PREFIX:
        _PRESET_PREFIX[preset.name] = common_prefix(preset.joints.values(), share=0.9)
    pprefix = _PRESET_PREFIX[preset.name]
    joints: dict[str, str] = {}
    used: set[str] = set()
    exact = spelled = 0
    for joint, bone in preset.joints.items():
        found, is_exact = index.find(bone, pprefix)
        if found is not None and found not in used:
            joints[joint] = found
            used.add(found)
            exact += is_exact
            spelled += is_exact or index.spelled_alike(found, bone, pprefix)
    total = sum(joint_weight(j) for j in preset.joints)
    score = sum(joint_weight(j) for j in joints) / max(total, 1e-9)
    markers = sum(index.find(m, pprefix)[0] is not None for m in preset.markers)
    cons = 0.0
    if constrained and joints:
        cons = sum(constrained.get(b, False) for b in joints.values()) / len(joints)
    return PresetMatch(preset, joints, score, exact, markers, cons, spelled)


def rank_presets(names: Sequence[str], constrained: dict[str, bool] | None = None) -> list[PresetMatch]:
    index = NameIndex(names)
    matches = [match_preset(p, index, constrained) for p in PRESETS.values()]
    return sorted(matches, key=lambda m: m.rank, reverse=True)


def mirror_bone_name(name: str, bone_names: Iterable[str]) -> str | None:
    """The rig's bone on the other side of `name` ('hand.L' -> 'hand.R', 'J_Bip_L_Hand' -> 'J_Bip_R_Hand',
    'LeftArm' -> 'RightArm', 'upperarm_l' -> 'upperarm_r'), or None."""
    names = list(bone_names)
    side, base = bone_key(name)
    if not side:
        return None
    other = "R" if side == "L" else "L"
    swaps = {"L": "R", "R": "L", "l": "r", "r": "l", "Left": "Right", "Right": "Left", "left": "right",
             "right": "left", "LEFT": "RIGHT", "RIGHT": "LEFT"}
    pattern = re.compile(r"(?<![A-Za-z])(L|R|l|r)(?![a-z])|Left|Right|left|right|LEFT|RIGHT")
    candidate = pattern.sub(lambda m: swaps[m.group(0)], name)
    if candidate != name and candidate in names:
        return candidate
    for n in names:
        if n != name and bone_key(n) == (other, base):
            return n
    return None


# --------------------------------------------------------------------------------------------------------
# Topology


@dataclass
class TopologyResult:
    joints: dict[str, str]
    confidence: float
    problems: list[str] = field(default_factory=list)
    facing_from: str = ""


class _Skeleton:
    """A bone hierarchy with world-space rest points and per-subtree extents along the up axis."""

    def __init__(self, names: list[str], parents: list[int], heads: np.ndarray, tails: np.ndarray, up: np.ndarray):
        self.names, self.parents, self.heads, self.tails, self.up = names, parents, heads, tails, up
        n = len(names)
        self.children: list[list[int]] = [[] for _ in range(n)]
        for i, p in enumerate(parents):
            if p >= 0:
                self.children[p].append(i)
        z_h, z_t = heads @ up, tails @ up
        self.zmin = np.minimum(z_h, z_t)
        self.zmax = np.maximum(z_h, z_t)
        self.sub: list[list[int]] = [[i] for i in range(n)]
        for i in range(n - 1, -1, -1):
            p = parents[i]
            if p >= 0:
                self.sub[p].extend(self.sub[i])
        self.sub_zmin = np.array([self.zmin[s].min() for s in self.sub]) if n else np.zeros(0)
        self.sub_zmax = np.array([self.zmax[s].max() for s in self.sub]) if n else np.zeros(0)
        self.floor = float(self.zmin.min()) if n else 0.0
        self.height = float(self.zmax.max() - self.floor) if n else 0.0
        self.length = np.linalg.norm(tails - heads, axis=1)
        self.depth = [0] * n
        for i, p in enumerate(parents):
            self.depth[i] = 0 if p < 0 else self.depth[p] + 1

    def points(self, i: int) -> np.ndarray:
        s = self.sub[i]
        return np.concatenate([self.heads[s], self.tails[s]])

    def z(self, p: np.ndarray) -> float:
        return float(p @ self.up)

    def horizontal(self, v: np.ndarray) -> np.ndarray:
        return v - (v @ self.up) * self.up


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _side_votes(sk: _Skeleton, bones: Iterable[int]) -> int:
    votes = 0
    for b in bones:
        side = bone_key(sk.names[b])[0]
        votes += 1 if side == "L" else -1 if side == "R" else 0
    return votes


def _find_hips(sk: _Skeleton, problems: list[str]) -> tuple[int, int, list[int]] | None:
    """(hips bone, spine child, [two leg roots]) or None."""
    H = sk.height
    best: tuple[int, int, list[int]] | None = None
    best_depth = -1
    for b in range(len(sk.names)):
        kids = sk.children[b]
        if len(kids) < 2:
            continue
        hz = sk.z(sk.heads[b])
        ups = [c for c in kids if sk.sub_zmax[c] > hz + 0.25 * H]
        downs = [c for c in kids if sk.sub_zmin[c] < hz - 0.25 * H and sk.sub_zmin[c] < sk.floor + 0.15 * H]
        if not ups:
            continue
        legs: list[int] = []
        if len(downs) >= 2:
            legs = downs
        elif len(downs) == 1:
            # A hips bone below the fork that carries both legs (Root -> Hips -> legs, Root -> Spine).
            inner = [c for c in sk.children[downs[0]]
                     if sk.sub_zmin[c] < hz - 0.25 * H and sk.sub_zmin[c] < sk.floor + 0.15 * H]
            if len(inner) >= 2:
                legs = inner
        if len(legs) < 2:
            continue
        # The two legs: the pair whose lowest points lie furthest apart sideways.
        lows = {c: sk.points(c)[np.argmin(sk.points(c) @ sk.up)] for c in legs}
        pair = max(((a, c) for i, a in enumerate(legs) for c in legs[i + 1:]),
                   key=lambda ac: np.linalg.norm(sk.horizontal(lows[ac[0]] - lows[ac[1]])))
        if np.linalg.norm(sk.horizontal(lows[pair[0]] - lows[pair[1]])) < 0.03 * H:
            continue
        spine = max(ups, key=lambda c: sk.sub_zmax[c])
        if sk.depth[b] > best_depth:
            best, best_depth = (b, spine, list(pair)), sk.depth[b]
    if best is None:
        problems.append("no hips: no bone where a chain going up and two legs reaching the floor branch")
    return best


def _path(sk: _Skeleton, start: int, pick: Callable[[list[int]], int],
          stop: Callable[[int], bool] | None = None) -> list[int]:
    out = [start]
    cur = start
    while sk.children[cur] and not (stop and stop(cur)):
        cur = pick(sk.children[cur])
        out.append(cur)
    return out


def _facing(sk: _Skeleton, hips: int, legs: list[int]) -> tuple[np.ndarray, str]:
    """The character's forward direction (world, horizontal) and what told it."""
    a, b = legs
    lows = [sk.points(c)[np.argmin(sk.points(c) @ sk.up)] for c in legs]
    lat = _unit(sk.horizontal(lows[0] - lows[1]))  # from leg b to leg a
    f_if_a_left = np.cross(lat, sk.up)  # left x up = forward
    votes = _side_votes(sk, sk.sub[a]) - _side_votes(sk, sk.sub[b])
    if abs(votes) >= 2:
        return (f_if_a_left if votes > 0 else -f_if_a_left), "side names"
    # Feet: the low points of each leg stick out forward of the hip (toes), hardly backward (heel).
    H = sk.height
    push = 0.0
    for c in legs:
        pts = sk.points(c)
        low = pts[(pts @ sk.up) < sk.floor + 0.12 * H]
        if len(low):
            rel = np.array([sk.horizontal(p - sk.heads[c]) for p in low]) @ f_if_a_left
            push += float(rel.max() + rel.min())
    if abs(push) > 0.03 * H:
        return (f_if_a_left if push > 0 else -f_if_a_left), "feet"
    default = _unit(sk.horizontal(np.array([0.0, -1.0, 0.0])))
    sign = 1.0 if float(default @ f_if_a_left) >= 0 else -1.0
    return sign * f_if_a_left, "Blender's convention (-Y forward)"


def _split_arm(
    sk: _Skeleton, root: int, left: np.ndarray, centre: np.ndarray
) -> tuple[dict[str, int], list[list[int]]]:
    """Collar, shoulder, elbow and wrist bones of an arm subtree (by index), and the finger chains."""

    def lateral(i: int) -> float:
        return abs(float((sk.heads[i] - centre) @ left))

    def reach(c: int) -> float:
        return float(np.abs((sk.points(c) - centre) @ left).max())

    def is_hand(i: int) -> bool:
        kids = sk.children[i]
        if len(kids) < 3:
            return False
        span = np.linalg.norm(sk.heads[i] - sk.heads[root])
        short = [c for c in kids if np.linalg.norm(sk.points(c) - sk.heads[i], axis=1).max() < 0.6 * span]
        return len(short) >= 3

    path = _path(sk, root, lambda kids: max(kids, key=reach), stop=is_hand)
    far = max(lateral(b) for b in path)
    i = next((k for k in range(len(path)) if lateral(path[k]) >= 0.2 * far), 0)
    if is_hand(path[-1]):
        h = len(path) - 1
    else:
        # No hand with three or more fingers: the wrist is where the forearm, as long as the upper arm,
        # ends (the path may run on into one or two finger chains, or end in a tiny end bone).
        heads = sk.heads[path]

        def fit(e: int, w: int) -> float:
            upper = max(float(np.linalg.norm(heads[e] - heads[i])), 1e-9)
            return abs(float(np.linalg.norm(heads[w] - heads[e])) / upper - 0.96)

        pairs = [(e, w) for e in range(i + 1, len(path)) for w in range(e + 1, len(path))]
        if not pairs:
            return {"wrist": path[-1]}, []
        h = min(pairs, key=lambda ew: (round(fit(*ew), 2), -ew[1]))[1]
    hand = path[h]
    out: dict[str, int] = {"wrist": hand}
    if h - i < 2:
        i = max(0, h - 2)
    if h - i < 2:
        return out, []
    out["shoulder"] = path[i]
    if i >= 1:
        out["collar"] = path[i - 1]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(sk.heads[path[i: h + 1]], axis=0), axis=1))])
    frac = arc / max(arc[-1], 1e-9)
    e = 1 + int(np.argmin(np.abs(frac[1:-1] - 0.51)))
    out["elbow"] = path[i + e]
    return out, _finger_paths(sk, hand)


def _finger_paths(sk: _Skeleton, hand: int) -> list[list[int]]:
    """Root-to-leaf paths under the hand, without the bones they share (palms carrying two fingers)."""
    paths: list[list[int]] = []

    def walk(i: int, acc: list[int]) -> None:
        acc = acc + [i]
        if not sk.children[i]:
            paths.append(acc)
        for c in sk.children[i]:
            walk(c, acc)

    for c in sk.children[hand]:
        walk(c, [])
    count: dict[int, int] = {}
    for p in paths:
        for b in p:
            count[b] = count.get(b, 0) + 1
    paths = [[b for b in p if count[b] == 1] for p in paths]
    paths = [p for p in paths if p]
    if len(paths) > 5:
        reach = {id(p): float(np.linalg.norm(sk.tails[p[-1]] - sk.heads[hand])) for p in paths}
        paths = sorted(paths, key=lambda p: reach[id(p)], reverse=True)[:5]
    return paths


def _finger_window(sk: _Skeleton, hand: int, path: list[int], thumb: bool) -> list[int]:
    """The three bones of a finger chain that are its phalanges (skipping metacarpals and tip-end bones):
    the window whose first joint sits as far from the wrist as the canonical hand has it."""
    if len(path) <= 3:
        return path
    target = 0.45 if thumb else 1.1  # wrist-to-first-joint distance / length of the three bones
    best, best_err = path[:3], np.inf
    for k in range(len(path) - 2):
        d = float(np.linalg.norm(sk.heads[path[k]] - sk.heads[hand]))
        length = float(np.linalg.norm(sk.tails[path[k + 2]] - sk.heads[path[k]]))
        err = abs(d / max(length, 1e-9) - target)
        if err < best_err:
            best, best_err = path[k: k + 3], err
    return best


def _topology(sk: _Skeleton) -> TopologyResult:
    problems: list[str] = []
    joints: dict[str, int] = {}
    if len(sk.names) < 8 or sk.height <= 0:
        return TopologyResult({}, 0.0, ["too few bones for a humanoid"])
    found = _find_hips(sk, problems)
    if found is None:
        return TopologyResult({}, 0.0, problems)
    hips, spine_child, legs = found
    H = sk.height
    forward, facing_from = _facing(sk, hips, legs)
    left = np.cross(sk.up, forward)
    centre = sk.heads[hips]
    joints["pelvis"] = hips
    score, total = 2.0, 2.0

    # Spine, arms, neck and head.
    spine_path = _path(sk, spine_child, lambda kids: max(kids, key=lambda c: sk.sub_zmax[c]))
    arm_roots: dict[str, tuple[int, int, float]] = {}  # side -> (path index, child, reach)
    for idx, node in enumerate(spine_path):
        for c in sk.children[node]:
            if idx + 1 < len(spine_path) and c == spine_path[idx + 1]:
                continue
            lat = (sk.points(c) - centre) @ left
            for side, values in (("left", lat), ("right", -lat)):
                r = float(values.max())
                if r > 0.15 * H and float(values.mean()) > 0 and (side not in arm_roots or r > arm_roots[side][2]):
                    arm_roots[side] = (idx, c, r)
    total += 6.0
    if len(arm_roots) < 2:
        missing = [s for s in ("left", "right") if s not in arm_roots]
        problems.append(f"no {' and '.join(missing)} arm branching off the spine")
        chest_idx = len(spine_path) - 1
    else:
        chest_idx = max(arm_roots["left"][0], arm_roots["right"][0])
    spine_bones = spine_path[: chest_idx + 1]
    above = spine_path[chest_idx + 1:]
    if spine_bones:
        joints["spine1"] = spine_bones[0]
        if len(spine_bones) >= 2:
            joints["spine3"] = spine_bones[-1]
        if len(spine_bones) >= 3:
            z0, z1 = sk.z(sk.heads[spine_bones[0]]), sk.z(sk.heads[spine_bones[-1]])
            mids = spine_bones[1:-1]
            joints["spine2"] = min(mids, key=lambda b: abs((sk.z(sk.heads[b]) - z0) / max(z1 - z0, 1e-9) - 0.7))
    if above:
        joints["neck"] = above[0]
        if len(above) >= 2:
            named = [b for b in above[1:] if "head" in name_tokens(sk.names[b])
                     and not {"end", "top", "nub", "tip"} & set(name_tokens(sk.names[b]))]
            if named:
                joints["head"] = named[0]
            else:
                z0 = sk.z(sk.heads[above[0]])
                top = float(sk.sub_zmax[above[0]])
                span = max(top - z0, 1e-9)
                joints["head"] = min(above[1:], key=lambda b: abs((sk.z(sk.heads[b]) - z0) / span - 0.31))
        score += 1.0
    else:
        problems.append("no neck or head above the arms")
    total += 1.0

    arm_lengths = []
    for side in ("left", "right"):
        if side not in arm_roots:
            continue
        parts, fingers = _split_arm(sk, arm_roots[side][1], left, centre)
        if "elbow" not in parts:
            problems.append(f"the {side} arm has too few bones for upper arm, forearm and hand")
            continue
        for part, b in parts.items():
            joints[f"{side}_{part}"] = b
        score += 3.0
        arm_lengths.append(float(np.linalg.norm(sk.heads[parts["wrist"]] - sk.heads[parts["shoulder"]])))
        total += 0.5
        if fingers:
            hand = parts["wrist"]
            tips = {id(p): float((sk.tails[p[-1]] - sk.heads[hand]) @ forward) for p in fingers}
            thumb = max(fingers, key=lambda p: tips[id(p)]) if len(fingers) >= 5 else None
            rest = [p for p in fingers if p is not thumb]
            windows = {id(p): _finger_window(sk, hand, p, False) for p in rest}
            rest.sort(key=lambda p: float((sk.heads[windows[id(p)][0]] - sk.heads[hand]) @ forward), reverse=True)
            for name, p in zip(("index", "middle", "ring", "pinky"), rest, strict=False):
                for seg, b in enumerate(windows[id(p)], start=1):
                    joints[f"{side}_{name}{seg}"] = b
            if thumb is not None:
                for seg, b in enumerate(_finger_window(sk, hand, thumb, True), start=1):
                    joints[f"{side}_thumb{seg}"] = b
            score += 0.5 * min(len(fingers), 5) / 5

    # Legs.
    leg_sides = sorted(legs, key=lambda c: float((sk.points(c) @ left).mean()), reverse=True)
    total += 1.0
    for side, root in zip(("left", "right"), leg_sides, strict=False):
        path = _path(sk, root, lambda kids: min(kids, key=lambda c: sk.sub_zmin[c]))
        top = sk.z(sk.heads[path[0]])
        floor = float(sk.sub_zmin[root])

        def frac(b: int, top: float = top, floor: float = floor) -> float:
            return (sk.z(sk.heads[b]) - floor) / max(top - floor, 1e-9)

        joints[f"{side}_hip"] = path[0]
        if len(path) >= 3:
            k = 1 + int(np.argmin([abs(frac(b) - 0.55) for b in path[1:-1]]))
            joints[f"{side}_knee"] = path[k]
            ankle = next((j for j in range(k + 1, len(path)) if frac(path[j]) < 0.2), None)
            if ankle is not None:
                joints[f"{side}_ankle"] = path[ankle]
                if ankle + 1 < len(path) and sk.length[path[ankle + 1]] > 0.01 * H:
                    joints[f"{side}_foot"] = path[ankle + 1]
            score += 0.5

    if len(arm_lengths) == 2:
        ratio = min(arm_lengths) / max(*arm_lengths, 1e-9)
        if ratio < 0.8:
            problems.append(f"the arms differ in length ({ratio:.0%})")
            score *= ratio
    confidence = 0.85 * score / total * (0.9 if facing_from.startswith("Blender") else 1.0)
    names = {j: sk.names[b] for j, b in joints.items()}
    return TopologyResult(names, float(confidence), problems, facing_from)


def detect_topology(rig: RigRest) -> TopologyResult:
    """Map a rig from its hierarchy and rest positions alone (bone names are used only to tell left from
    right when they say it). World Z is up (the object transform is applied, so FBX's Y-up data counts as
    Z-up). Tries all bones and, for rigs with control bones, the deform bones alone."""
    heads, tails = rig.world_points()
    views: list[tuple[list[int], list[int]]] = [(list(range(len(rig.names))), list(rig.parents))]
    if rig.deform is not None and 8 <= sum(rig.deform) < len(rig.names):
        keep = [i for i, d in enumerate(rig.deform) if d]
        pos = {b: k for k, b in enumerate(keep)}
        parents = []
        for b in keep:
            p = rig.parents[b]
            while p >= 0 and p not in pos:
                p = rig.parents[p]
            parents.append(pos[p] if p >= 0 else -1)
        views.append((keep, parents))
    best = TopologyResult({}, 0.0, [])
    for keep, parents in views:
        sk = _Skeleton([rig.names[b] for b in keep], parents, heads[keep], tails[keep], np.array([0.0, 0.0, 1.0]))
        result = _topology(sk)
        if result.confidence > best.confidence or (not best.problems and not best.joints):
            best = result
    return best


# --------------------------------------------------------------------------------------------------------
# Combined


def _as_names(rig: Any) -> tuple[list[str], RigRest | None]:
    if isinstance(rig, RigRest):
        return list(rig.names), rig
    return list(rig), None


def _unmapped(joints: dict[str, str]) -> list[str]:
    return [j for j in JOINT_NAMES if j not in joints]


def _agrees(names: dict[str, str], topo: dict[str, str]) -> bool:
    common = [j for j in names if j in topo]
    if not common or any(names.get(w) != topo.get(w) for w in ("left_wrist", "right_wrist")):
        return False
    return sum(names[j] == topo[j] for j in common) >= 0.7 * len(common)


def detect_bone_map(rig: Any, preset: str | None = None) -> BoneMap:
    """The bone map of a rig given as a RigRest (names and topology) or a list of bone names (names only).
    preset: use this preset's names only. Raises RigError with what could not be mapped."""
    bone_map = _detect(rig, preset)
    _, rest = _as_names(rig)
    if rest is not None and rest.constrained:
        held = [b for b in bone_map.joints.values() if rest.constrained[rest.index[b]]]
        if held:
            bone_map.notes.append(f"{len(held)} mapped bones have constraints that may override their keys "
                                  f"({', '.join(held[:3])}{' ...' if len(held) > 3 else ''})")
    return bone_map


def _detect(rig: Any, preset: str | None) -> BoneMap:
    names, rest = _as_names(rig)
    constrained = dict(zip(rest.names, rest.constrained or [], strict=True)) if rest is not None else None
    if preset is not None:
        if preset not in PRESETS:
            raise RigError(f"Unknown bone-map preset {preset!r}; known: {', '.join(PRESETS)}")
        match = match_preset(PRESETS[preset], NameIndex(names), constrained)
        missing = missing_required(match.joints)
        if missing:
            raise RigError(f"The rig does not fit the {match.preset.label} preset: no bones found for "
                           + ", ".join(missing))
        return _from_match(match, names)
    ranked = rank_presets(names, constrained)
    best = ranked[0]
    acceptable = not missing_required(best.joints) and best.score >= 0.5
    wanted = [j for j in JOINT_NAMES if j not in best.joints and j not in best.preset.omits]
    topo = detect_topology(rest) if rest is not None and (not acceptable or wanted) else None
    if acceptable:
        bone_map = _from_match(best, names)
        if topo is not None and topo.joints and _agrees(best.joints, topo.joints):
            used = set(bone_map.joints.values())
            added = [j for j in wanted if j in topo.joints and topo.joints[j] not in used]
            for j in added:
                bone_map.joints[j] = topo.joints[j]
            if added:
                bone_map.method = "names+topology"
                bone_map.unmapped = _unmapped(bone_map.joints)
                bone_map.notes.append(f"{len(added)} joints found by topology")
        return bone_map
    if topo is not None and topo.joints and not missing_required(topo.joints):
        notes = [f"facing from {topo.facing_from}"] + topo.problems
        return BoneMap("topology", dict(topo.joints), topo.confidence, _unmapped(topo.joints), {}, "topology",
                       notes)
    raise RigError(_failure_report(best, topo, rest is None))


def best_guess(rig: Any) -> dict[str, str]:
    """Whatever can be found when detection fails, as a starting point for mapping by hand: the best
    preset's name matches, completed by topology's partial result."""
    names, rest = _as_names(rig)
    joints = dict(rank_presets(names)[0].joints)
    if rest is not None:
        used = set(joints.values())
        for j, b in detect_topology(rest).joints.items():
            if j not in joints and b not in used:
                joints[j] = b
                used.add(b)
    return {j: joints[j] for j in JOINT_NAMES if j in joints}


def _from_match(match: PresetMatch, names: Sequence[str]) -> BoneMap:
    present = set(names)
    extra = {b: props for b, props in match.preset.extra_keys.items() if b in present}
    return BoneMap(match.preset.name, dict(match.joints), match.score, _unmapped(match.joints), extra, "names")


def _failure_report(best: PresetMatch, topo: TopologyResult | None, names_only: bool) -> str:
    missing = missing_required(best.joints)
    known = ", ".join(p.label for p in PRESETS.values())
    text = "Could not map this rig: "
    if missing:
        text += "no bones found for " + ", ".join(missing) + ". "
    else:
        text += f"too few joints matched ({best.score:.0%}). "
    text += f"Gestura knows these rigs by name: {known}. "
    if best.joints:
        text += f"(Closest: {best.preset.label}, {len(best.joints)} joints matched.)"
    else:
        text += "(No bone name matched any of them.)"
    if topo is not None:
        if topo.joints:
            have = sorted(topo.joints, key=JOINT_NAMES.index)
            text += (f" By structure it found {len(have)} joints but not "
                     + ", ".join(missing_required(topo.joints)) + ".")
        if topo.problems:
            text += " Structure: " + "; ".join(topo.problems) + "."
    elif names_only:
        text += " (Matched by names only.)"
    text += " Map the bones by hand in the Gesture panel's Bone Mapping."
    return text


# --------------------------------------------------------------------------------------------------------
# Manual maps and their JSON presets

MAPPING_FORMAT = "gestura-bone-map"


def manual_bone_map(joints: dict[str, str], bone_names: Sequence[str], *, root_motion: bool = True,
                    constrained: dict[str, bool] | None = None) -> BoneMap:
    """A BoneMap from a hand-made canonical joint -> bone table (empty bones are skipped). Raises RigError
    for unknown joints, bones the rig lacks, a bone used twice, or missing required joints."""
    table = {j: b for j, b in joints.items() if b}
    unknown = [j for j in table if j not in JOINT_NAMES]
    if unknown:
        raise RigError("Manual mapping: unknown canonical joints " + ", ".join(unknown))
    names = set(bone_names)
    absent = [f"{j} -> {b!r}" for j, b in table.items() if b not in names]
    if absent:
        raise RigError("Manual mapping: these bones are not in the rig: " + ", ".join(absent))
    seen: dict[str, str] = {}
    for j, b in table.items():
        if b in seen:
            raise RigError(f"Manual mapping: bone {b!r} is used for both {seen[b]} and {j}")
        seen[b] = j
    missing = missing_required(table)
    if missing:
        raise RigError("Manual mapping: no bones set for " + ", ".join(missing)
                       + " (arms, pelvis and neck or head are needed)")
    # Switch keys of a known rig (Rigify's IK/FK) still apply when its bones are mapped by hand.
    extra: dict[str, dict[str, float]] = {}
    for preset in PRESETS.values():
        if preset.extra_keys and len(set(preset.joints.values()) & set(table.values())) >= 0.5 * len(table):
            extra.update({b: p for b, p in preset.extra_keys.items() if b in names})
    notes = []
    if constrained:
        held = [b for b in table.values() if constrained.get(b)]
        if held:
            notes.append(f"{len(held)} mapped bones have constraints that may override their keys")
    ordered = {j: table[j] for j in JOINT_NAMES if j in table}
    return BoneMap("manual", ordered, 1.0, _unmapped(ordered), extra, "manual", notes, root_motion)


def mapping_to_json(joints: dict[str, str], name: str = "", *, root_motion: bool = True) -> str:
    data = {"format": MAPPING_FORMAT, "version": 1, "name": name, "root_motion": root_motion,
            "joints": {j: joints[j] for j in JOINT_NAMES if joints.get(j)}}
    return json.dumps(data, indent=2)


def mapping_from_json(text: str) -> tuple[str, dict[str, str], bool]:
    """(name, joints, root_motion) from a preset file; ValueError when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(data, dict) or data.get("format") != MAPPING_FORMAT:
        raise ValueError("not a Gestura bone-map preset")
    joints = data.get("joints")
    if not isinstance(joints, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in joints.items()):
        raise ValueError("the preset has no joint table")
    unknown = [j for j in joints if j not in JOINT_NAMES]
    if unknown:
        raise ValueError("unknown canonical joints: " + ", ".join(unknown))
    return str(data.get("name", "")), dict(joints), bool(data.get("root_motion", True))
