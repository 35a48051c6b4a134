"""Rule-based co-speech gesture engine (numpy only, deterministic for a seed, 30 fps).

How it works, in short:
1. Prosody: peaks of the onset/energy envelope while voiced become beat times (minimum spacing and
   threshold scale with ``activation``); voiced runs separated by long pauses (> 0.7 s) are phrases.
2. Words: a small lexicon maps words to lexical gestures (deictic, iconic, metaphoric, emblems) whose
   stroke apex lands on the word's start. They replace beats that fall too close.
3. Each gesture (Kendon: preparation, stroke, hold, retraction) becomes keyposes for one or both arms.
   A keypose is a wrist target in the chest frame, an elbow pole, a forearm twist, a hand aim and a hand
   shape; an analytic two-bone IK turns it into shoulder/elbow/wrist rotations. One hand per phrase
   (dominant by ``handedness``), holds in short pauses, retraction to the rest pose in long ones.
4. Keyposes are interpolated in rotation space (slerp) with minimum-jerk easing (``power`` sharpens the
   stroke and adds an overshoot); head (nods, shakes, drift), torso (lean/twist following the active
   hand, breathing), weight shift and micro motion are additive layers; a Gaussian low-pass whose width
   follows ``fluidity`` smooths everything.
5. Safety: the wrist speed is limited when the keys are laid out, and a final pass pushes the shoulder
   outward/forward wherever a hand point enters the torso capsule or the head sphere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .motion import CanonicalMotion
from .rotations import (
    axis_angle_to_quat,
    matrix_to_quat,
    quat_between,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_normalize,
    quat_rotate,
    quat_slerp,
)
from .skeleton import (
    JOINT_INDEX,
    NUM_JOINTS,
    REST_BONE_VECTORS,
    REST_OFFSETS,
    REST_PELVIS_HEIGHT,
)
from .style import StyleParams

if TYPE_CHECKING:
    from .audio import AudioFeatures

FPS = 30.0
J = JOINT_INDEX

# ----------------------------------------------------------------------------------------------------
# Body model for the clearance check
TORSO_CHAIN = ("pelvis", "spine1", "spine2", "spine3", "neck")
TORSO_RADIUS = 0.13
HEAD_RADIUS = 0.11
_HEAD_CENTRE_OFFSET = np.array([0.0, 0.08, 0.02])  # from the head joint, in the head's frame
_FINGER_TIPS = ("index3", "middle3", "ring3", "pinky3", "thumb3")
_CLEARANCE_MARGIN = 0.015

# ----------------------------------------------------------------------------------------------------
# Left-arm geometry (the right arm is its mirror image). Chest frame = spine3's frame.
_COLLAR_OFF = REST_OFFSETS[J["left_collar"]]
_SHOULDER_OFF = REST_OFFSETS[J["left_shoulder"]]
_UPPER = REST_OFFSETS[J["left_elbow"]]
_FORE = REST_OFFSETS[J["left_wrist"]]
_HAND = REST_BONE_VECTORS[J["left_wrist"]]
_FLEX_AXIS = np.array([0.0, -1.0, 0.0])  # left elbow flexion swings the forearm from +X towards +Z
_SHOULDER_REST = _COLLAR_OFF + _SHOULDER_OFF  # shoulder position in the chest frame, collar at rest

_FINGER_NAMES = ("index", "middle", "ring", "pinky")
_SEG_CURL = (1.35, 1.6, 1.05)  # radians per unit curl, segments 1..3
_CURL_AXIS = np.array([0.0, 0.0, -1.0])  # left fingers curl towards the palm (-Y)
_THUMB_DIR = REST_OFFSETS[J["left_thumb2"]] / np.linalg.norm(REST_OFFSETS[J["left_thumb2"]])
_THUMB_AXIS = np.cross(_THUMB_DIR, np.array([0.0, -1.0, -0.6]))
_THUMB_AXIS = _THUMB_AXIS / np.linalg.norm(_THUMB_AXIS)
_THUMB_CURL = (0.55, 0.5, 0.7)
_SPREAD = {"index": -0.15, "middle": 0.0, "ring": 0.08, "pinky": 0.2}

# Hand shapes: curl of index, middle, ring, pinky, thumb (0 straight .. 1 fully curled), spread.
RELAXED = np.array([0.35, 0.42, 0.5, 0.56, 0.3, 0.0])
OPEN = np.array([0.08, 0.1, 0.13, 0.16, 0.1, 0.6])
POINT = np.array([0.0, 0.95, 1.0, 1.0, 0.8, 0.0])
PINCH = np.array([0.55, 0.45, 0.5, 0.55, 0.75, 0.0])
FIST = np.array([0.95, 1.0, 1.0, 1.0, 0.85, 0.0])
FLAT = np.array([0.02, 0.02, 0.03, 0.04, 0.05, 0.3])

# ----------------------------------------------------------------------------------------------------
# Gesture table. Positions are wrist offsets from the rest shoulder in left-arm chest space
# (+X outward, +Y up, +Z forward); the right arm mirrors them. twist: + turns the palm up.


@dataclass(frozen=True)
class _Shape:
    apex: tuple[float, float, float]
    prep: tuple[float, float, float]  # prep position = apex + this
    twist: float
    aim: tuple[float, float, float] | None
    fingers: tuple[float, ...]
    two_hands: bool
    arm: bool = True
    head: str | None = None  # "shake", "nod", "tilt"
    pole: tuple[float, float, float] = (0.5, -0.5, -0.7)


LEXICAL: dict[str, _Shape] = {
    "self": _Shape((-0.10, -0.17, 0.27), (0.03, -0.04, 0.05), 0.0, (-1.0, 0.1, -0.25), (0.12, 0.12, 0.15, 0.18,
                   0.15, 0.1), False),
    "you": _Shape((-0.05, -0.12, 0.42), (0.0, 0.04, -0.08), -0.9, (-0.12, 0.05, 1.0), tuple(POINT), False),
    "here": _Shape((-0.04, -0.30, 0.34), (0.0, 0.07, -0.04), -1.0, (-0.05, -0.75, 0.66), tuple(POINT), False),
    "there": _Shape((0.22, -0.14, 0.30), (-0.10, 0.0, -0.02), -0.7, (0.75, 0.0, 0.66), tuple(POINT), False),
    "big": _Shape((0.24, -0.20, 0.30), (-0.18, -0.02, 0.0), 1.0, (0.4, 0.0, 0.9), tuple(OPEN), True),
    "small": _Shape((-0.12, -0.22, 0.32), (0.06, 0.02, 0.0), 0.3, (-0.3, 0.2, 1.0), tuple(PINCH), True),
    "no": _Shape((0.08, -0.25, 0.30), (-0.16, 0.02, 0.0), -1.4, None, tuple(FLAT), False, head="shake"),
    "yes": _Shape((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, None, tuple(OPEN), False, arm=False, head="nod"),
    "maybe": _Shape((0.10, -0.30, 0.27), (-0.05, 0.05, -0.03), 1.6, (0.3, 0.1, 1.0), tuple(OPEN), True,
                    head="tilt"),
    "stop": _Shape((-0.02, -0.08, 0.40), (0.0, -0.06, -0.10), -1.5, (0.0, 1.0, 0.2), tuple(FLAT), False),
    "together": _Shape((-0.10, -0.22, 0.33), (0.16, 0.0, -0.02), 0.0, (-0.2, 0.1, 1.0), tuple(OPEN), True),
    "idea": _Shape((-0.02, 0.10, 0.14), (0.0, -0.08, 0.02), -0.3, (-0.25, 1.0, 0.1), tuple(POINT), False,
                   pole=(1.0, -0.6, -0.2)),
}
WORD_TO_GESTURE: dict[str, str] = {
    **dict.fromkeys(("i", "me", "my", "myself", "mine", "i'm", "i've", "i'll", "i'd"), "self"),
    **dict.fromkeys(("you", "your", "yours", "yourself", "you're", "you've", "you'll"), "you"),
    **dict.fromkeys(("this", "here", "these"), "here"),
    **dict.fromkeys(("there", "that", "those"), "there"),
    **dict.fromkeys(("big", "huge", "large", "everything", "all", "whole", "enormous", "massive"), "big"),
    **dict.fromkeys(("small", "little", "tiny", "bit"), "small"),
    **dict.fromkeys(("no", "not", "never", "don't", "nothing", "can't", "won't", "nobody", "none", "nope"), "no"),
    **dict.fromkeys(("yes", "sure", "absolutely", "yeah", "definitely", "exactly", "right"), "yes"),
    **dict.fromkeys(("maybe", "perhaps", "possibly", "probably"), "maybe"),
    **dict.fromkeys(("stop", "wait", "hold"), "stop"),
    **dict.fromkeys(("together", "connect", "between", "combine", "join"), "together"),
    **dict.fromkeys(("idea", "think", "thought", "imagine", "remember"), "idea"),
}

_REST_SHAPES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float,
                              tuple[float, float, float] | None, np.ndarray]] = {
    # position, pole, twist, aim, fingers
    "sides": ((0.045, -0.49, 0.05), (0.3, 0.0, -1.0), 0.0, None, RELAXED),
    "front": ((-0.11, -0.38, 0.23), (0.7, -0.3, -0.6), -0.3, (-0.55, -0.55, 0.55), RELAXED),
    "behind": ((-0.06, -0.41, -0.17), (1.0, 0.0, -0.3), 0.0, (-0.4, -0.75, -0.5), RELAXED),
}


# ----------------------------------------------------------------------------------------------------
# Small numeric helpers


def _minjerk(u: np.ndarray) -> np.ndarray:
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


def _ease(u: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk easing of u**p: p > 1 starts slowly and stops sharply (a powerful stroke)."""
    return _minjerk(np.clip(u, 0.0, 1.0) ** p)


def _ease_peak(p: float) -> float:
    u = np.linspace(0.0, 1.0, 401)
    return float(np.max(np.gradient(_ease(u, p), u)))


def _gauss_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 with edge padding."""
    if sigma < 0.05 or x.shape[0] < 2:
        return x.copy()
    r = max(1, int(math.ceil(3.0 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    n = x.shape[0]
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)], 0)
    out = np.zeros_like(x, dtype=np.float64)
    for i, w in enumerate(k):
        out += w * pad[i:i + n]
    return out


def _sines(rng: np.random.Generator, t: np.ndarray, n: int, fmin: float, fmax: float) -> np.ndarray:
    """(T, n) smooth noise of roughly unit amplitude: three random sinusoids per channel."""
    f = rng.uniform(fmin, fmax, (3, n))
    ph = rng.uniform(0.0, 2.0 * np.pi, (3, n))
    a = np.array([0.6, 0.3, 0.2])[:, None]
    return np.sum(a[:, None, :] * np.sin(2.0 * np.pi * f[:, None, :] * t[None, :, None] + ph[:, None, :]), 0)


def _continuous(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along axis 0 so neighbours share a hemisphere (vectorised)."""
    if q.shape[0] < 2:
        return q.copy()
    d = np.sum(q[1:] * q[:-1], axis=-1)
    s = np.concatenate([np.ones((1,) + d.shape[1:]), np.cumprod(np.where(d < 0, -1.0, 1.0), axis=0)], 0)
    return q * s[..., None]


def _mirror_quat(q: np.ndarray) -> np.ndarray:
    """Reflect rotations across the character's sagittal plane (x -> -x)."""
    return q * np.array([1.0, 1.0, -1.0, -1.0])


def _rot(axis: Sequence[float] | np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    return quat_from_axis_angle(np.asarray(axis, dtype=np.float64), angle)


def _euler_small(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotation from small angles: pitch about +X (forward/down), yaw about +Y, roll about +Z."""
    return quat_mul(_rot([0, 1, 0], yaw), quat_mul(_rot([1, 0, 0], pitch), _rot([0, 0, 1], roll)))


def _resample(x: np.ndarray, src_fps: float, n_out: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(n_out)
    ts = np.arange(len(x)) / src_fps
    return np.interp(np.arange(n_out) / FPS, ts, x)


# ----------------------------------------------------------------------------------------------------
# Analytic two-bone IK for the left arm in the chest frame


def _left_arm_ik(target: np.ndarray, pole: np.ndarray, twist: np.ndarray, aim: np.ndarray,
                 collar_q: np.ndarray) -> np.ndarray:
    """Local quaternions (K, 3, 4) of left shoulder, elbow and wrist.

    target: (K, 3) wrist position in the chest frame; pole: (K, 3) where the elbow should point;
    twist: (K,) forearm twist (+ = supination, palm up); aim: (K, 3) desired hand direction in the chest
    frame (NaN: keep the hand in line with the forearm); collar_q: (4,) left collar local rotation.
    """
    k = target.shape[0]
    shoulder = _COLLAR_OFF + quat_rotate(collar_q, _SHOULDER_OFF)
    w = target - shoulder
    d = np.linalg.norm(w, axis=-1)
    f = _FLEX_AXIS
    a_f, b_f = _UPPER @ f, _FORE @ f
    a_p, b_p = _UPPER - a_f * f, _FORE - b_f * f
    na, nb = np.linalg.norm(a_p), np.linalg.norm(b_p)
    phi0 = math.atan2(float(np.cross(a_p, b_p) @ f), float(a_p @ b_p))
    max_reach = np.linalg.norm(_UPPER + _FORE) * 0.995
    d = np.clip(d, 0.08, max_reach)
    c = (d**2 - _UPPER @ _UPPER - _FORE @ _FORE - 2.0 * a_f * b_f) / (2.0 * na * nb)
    theta = np.maximum(np.arccos(np.clip(c, -1.0, 1.0)) - phi0, 0.12)  # keep a little bend
    fore_axis = _FORE / np.linalg.norm(_FORE)
    q_flex = _rot(np.broadcast_to(f, (k, 3)), theta)
    q_twist = _rot(np.broadcast_to(-fore_axis, (k, 3)), twist)
    q_elbow = quat_mul(q_flex, q_twist)
    v = _UPPER + quat_rotate(q_flex, np.broadcast_to(_FORE, (k, 3)))  # shoulder->wrist, rest frame

    def frame(x: np.ndarray, y_hint: np.ndarray) -> np.ndarray:
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        y = y_hint - np.sum(y_hint * x, -1, keepdims=True) * x
        y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-9)
        return np.stack([x, y, np.cross(x, y)], axis=-1)

    f1 = frame(v, np.broadcast_to(_UPPER, (k, 3)))
    f2 = frame(w, pole)
    g_shoulder = f2 @ np.swapaxes(f1, -1, -2)
    q_gs = matrix_to_quat(g_shoulder)
    q_shoulder = quat_mul(quat_conj(np.broadcast_to(collar_q, (k, 4))), q_gs)
    # Wrist: aim the hand, within anatomical-ish limits.
    g_elbow = quat_mul(q_gs, q_elbow)
    q_wrist = np.zeros((k, 4))
    q_wrist[:, 0] = 1.0
    has_aim = ~np.any(np.isnan(aim), axis=-1)
    if np.any(has_aim):
        local_aim = quat_rotate(quat_conj(g_elbow[has_aim]), aim[has_aim])
        qa = quat_between(np.broadcast_to(_HAND, local_aim.shape), local_aim)
        ang = 2.0 * np.arccos(np.clip(qa[:, 0], -1.0, 1.0))
        lim = np.minimum(1.0, 1.3 / np.maximum(ang, 1e-9))  # at most 75 degrees
        identity = np.broadcast_to(quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), 0.0), qa.shape)
        q_wrist[has_aim] = quat_slerp(identity, qa, lim)
    return np.stack([q_shoulder, q_elbow, q_wrist], axis=1)


def _finger_quats(params: np.ndarray) -> np.ndarray:
    """Left-hand finger rotations (T, 15, 4) in JOINT_NAMES order from (T, 6) shape parameters."""
    n = params.shape[0]
    out = np.zeros((n, 15, 4))
    names = [f"left_{f}{s}" for f in ("index", "middle", "pinky", "ring", "thumb") for s in (1, 2, 3)]
    col = {"index": 0, "middle": 1, "ring": 2, "pinky": 3}
    for i, name in enumerate(names):
        finger, seg = name[5:-1], int(name[-1])
        if finger == "thumb":
            out[:, i] = _rot(np.broadcast_to(_THUMB_AXIS, (n, 3)), _THUMB_CURL[seg - 1] * params[:, 4])
            continue
        curl = _rot(np.broadcast_to(_CURL_AXIS, (n, 3)), _SEG_CURL[seg - 1] * params[:, col[finger]])
        if seg == 1:
            spread = _rot(np.broadcast_to([0.0, 1.0, 0.0], (n, 3)), _SPREAD[finger] * params[:, 5])
            curl = quat_mul(spread, curl)
        out[:, i] = curl
    return out


_LEFT_FINGER_IDX = np.array([J[f"left_{f}{s}"] for f in ("index", "middle", "pinky", "ring", "thumb")
                             for s in (1, 2, 3)])
_RIGHT_FINGER_IDX = np.array([J[f"right_{f}{s}"] for f in ("index", "middle", "pinky", "ring", "thumb")
                              for s in (1, 2, 3)])


# ----------------------------------------------------------------------------------------------------
# Prosody analysis


def _speech_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame runs where mask is True."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def detect_beats(envelope: np.ndarray, voiced: np.ndarray, activation: float = 0.5,
                 fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Prosodic peaks: frame indices and strengths (0..1) of envelope peaks in voiced frames."""
    n = len(envelope)
    if n < 3 or not np.any(voiced):
        return np.zeros(0, dtype=int), np.zeros(0)
    env = _gauss_smooth(np.asarray(envelope, dtype=np.float64), 1.0)
    top = float(np.max(env[voiced])) if np.any(voiced) else 0.0
    if top <= 1e-6:
        return np.zeros(0, dtype=int), np.zeros(0)
    env = env / top
    is_max = np.zeros(n, dtype=bool)
    is_max[1:-1] = (env[1:-1] >= env[:-2]) & (env[1:-1] > env[2:])
    is_max &= voiced
    thr = 0.15 + 0.3 * (1.0 - activation)
    w = max(2, int(0.25 * fps))
    cand = []
    for i in np.flatnonzero(is_max & (env > thr)):
        lo = min(env[max(0, i - w):i + 1].min(), env[i:min(n, i + w + 1)].min())
        if env[i] - lo > 0.08:
            cand.append(int(i))
    spacing = (0.5 - 0.2 * activation) * fps
    chosen: list[int] = []
    for i in sorted(cand, key=lambda i: -env[i]):
        if all(abs(i - j) >= spacing for j in chosen):
            chosen.append(i)
    chosen.sort()
    idx = np.array(chosen, dtype=int)
    return idx, np.clip(env[idx], 0.0, 1.0) if len(idx) else np.zeros(0)


# ----------------------------------------------------------------------------------------------------
# Planning


@dataclass
class _Pose:
    pos: np.ndarray
    pole: np.ndarray
    twist: float
    aim: np.ndarray  # NaN = no aim
    fingers: np.ndarray
    active: float


@dataclass
class _Key:
    t: float
    pose: _Pose
    ease: float = 1.0  # exponent of the segment that ends at this key


@dataclass
class _Event:
    t: float
    kind: str  # "beat" or a LEXICAL key
    hands: str  # "L", "R" or "B"
    strength: float
    poses: dict  # arm -> (prep, apex, hold) poses


_NAN3 = np.full(3, np.nan)


def _pose(
    pos: ArrayLike, pole: ArrayLike, twist: float, aim: ArrayLike | None, fingers: ArrayLike, active: float
) -> _Pose:
    return _Pose(np.asarray(pos, dtype=np.float64), np.asarray(pole, dtype=np.float64), float(twist),
                 _NAN3.copy() if aim is None else np.asarray(aim, dtype=np.float64),
                 np.asarray(fingers, dtype=np.float64), float(active))


def _rest_pose(style: StyleParams) -> _Pose:
    pos, pole, twist, aim, fingers = _REST_SHAPES[style.rest_pose]
    return _pose(np.array(pos) + _SHOULDER_REST, pole, twist, aim, fingers, 0.0)


def _reach(style: StyleParams, strength: float) -> float:
    return (0.55 + 0.9 * style.spatial_extent) * (0.75 + 0.35 * strength)


def _beat_poses(style: StyleParams, rng: np.random.Generator, strength: float,
                prev_apex: np.ndarray | None) -> tuple[_Pose, _Pose, _Pose]:
    s = style.spatial_extent
    centre = np.array([-0.05 + 0.08 * (s - 0.5), -0.28 + 0.08 * (s - 0.5), 0.27 + 0.12 * (s - 0.5)])
    spread = np.array([0.07, 0.05, 0.04]) * (0.6 + 0.8 * s)
    if prev_apex is not None and rng.random() < style.repetition:
        offset = prev_apex - _SHOULDER_REST + rng.normal(0.0, 0.012, 3)  # a repeated beat, not identical
    else:
        for _ in range(8):
            offset = centre + rng.uniform(-1.0, 1.0, 3) * spread
            if prev_apex is None or np.linalg.norm(offset + _SHOULDER_REST - prev_apex) > 0.04:
                break
    flick = (0.035 + 0.09 * s) * (0.5 + 0.6 * strength)
    direction = np.array([rng.uniform(-0.3, 0.3), 1.0, rng.uniform(-0.2, 0.5)])
    direction /= np.linalg.norm(direction)
    pole = np.array([0.5, -0.5, -0.7]) + rng.normal(0.0, 0.12, 3)
    twist = rng.uniform(0.3, 1.1)
    fingers = OPEN.copy()
    if style.power > 0.7:  # forceful speakers beat with a fist
        fingers = fingers + (FIST - fingers) * min(1.0, (style.power - 0.7) / 0.3 * 0.85)
    apex_pos = offset + _SHOULDER_REST
    prep = _pose(apex_pos + direction * flick, pole, twist + 0.1, None, fingers, 1.0)
    apex = _pose(apex_pos, pole, twist, None, fingers, 1.0)
    hold = _pose(apex_pos + np.array([0.0, -0.02, -0.01]), pole, twist,
                 None, fingers * 0.7 + RELAXED * 0.3, 0.9)
    return prep, apex, hold


def _lexical_poses(kind: str, style: StyleParams, rng: np.random.Generator,
                   strength: float) -> tuple[_Pose, _Pose, _Pose]:
    shape = LEXICAL[kind]
    reach = _reach(style, strength)
    apex_off = np.array(shape.apex)
    if kind in ("big", "there", "maybe", "no"):  # iconic extent grows with the spatial extent
        apex_off = apex_off + np.array([0.08, 0.02, 0.04]) * (reach - 1.0)
    apex_off = apex_off + rng.normal(0.0, 0.012, 3)
    apex_pos = apex_off + _SHOULDER_REST
    prep_pos = apex_pos + np.array(shape.prep) * min(1.3, reach) * rng.uniform(0.8, 1.2)  # never twice the same
    pole = np.array(shape.pole) + rng.normal(0.0, 0.08, 3)
    aim = None if shape.aim is None else np.array(shape.aim)
    fingers = np.array(shape.fingers)
    prep = _pose(prep_pos, pole, shape.twist, aim, fingers, 1.0)
    apex = _pose(apex_pos, pole, shape.twist, aim, fingers, 1.0)
    hold = _pose(apex_pos + np.array([0.0, -0.015, -0.01]), pole, shape.twist, aim, fingers, 1.0)
    return prep, apex, hold


def _normalise_word(text: str) -> str:
    t = text.lower().replace("\u2019", "'")
    return re.sub(r"[^a-z']", "", t).strip("'")


def _plan_events(features_t: dict, words: Sequence | None, style: StyleParams,
                 rng: np.random.Generator, duration: float) -> tuple[list[_Event], list[tuple[float, float]]]:
    voiced = features_t["voiced"]
    env = 0.65 * features_t["onset"] + 0.35 * features_t["energy"]
    beat_idx, beat_str = detect_beats(env, voiced, style.activation)
    # Phrases and long pauses from voicing (gaps under 0.25 s are ignored).
    runs = [(a / FPS, b / FPS) for a, b in _speech_runs(voiced)]
    pauses: list[tuple[float, float]] = []
    prev_end = 0.0
    for a, b in runs:
        if a - prev_end > 0.7:
            pauses.append((prev_end, a))
        prev_end = b
    pauses.append((prev_end, max(prev_end, duration) + 10.0))
    # Lexical events.
    lex: list[tuple[float, str]] = []
    for w in words or ():
        kind = WORD_TO_GESTURE.get(_normalise_word(str(getattr(w, "text", ""))))
        start = float(getattr(w, "start", -1.0))
        if kind is None or not (0.0 <= start < duration):
            continue
        if lex and start - lex[-1][0] < 0.45:
            continue
        lex.append((start, kind))
    events: list[tuple[float, str, float]] = [(t, k, 0.8) for t, k in lex]
    for i, s in zip(beat_idx.tolist(), beat_str.tolist(), strict=True):
        t = i / FPS
        if any(-0.6 < t - lt < 0.35 for lt, k in lex if LEXICAL[k].arm) or t < 0.25:
            continue
        events.append((t, "beat", float(s)))
    events.sort(key=lambda e: e[0])

    # Hand choice: one hand per phrase (between long pauses), dominant hand by handedness.
    p_right = 0.5 + 0.45 * style.handedness
    out: list[_Event] = []
    phrase_of = np.searchsorted([p[0] for p in pauses], [e[0] for e in events])
    hand_for_phrase: dict[int, str] = {}
    unit_left = 0  # events left in the current gesture unit (same hand); a new unit may switch hands
    prev_apex: dict[str, np.ndarray | None] = {"L": None, "R": None}
    for (t, kind, strength), ph in zip(events, phrase_of.tolist(), strict=True):
        if ph not in hand_for_phrase or unit_left <= 0:  # alternate occasionally, between gesture units
            hand_for_phrase[ph] = "R" if rng.random() < p_right else "L"
            unit_left = int(rng.integers(4, 9))
        unit_left -= 1
        hand = hand_for_phrase[ph]
        shape = LEXICAL.get(kind)
        two = shape.two_hands if shape else (
            strength > 0.75 and rng.random() < 0.05 + 0.3 * style.spatial_extent * style.activation)
        hands = "B" if two else hand
        poses = {}
        for arm in ("L", "R"):
            if hands not in (arm, "B"):
                continue
            if kind == "beat":
                poses[arm] = _beat_poses(style, rng, strength, prev_apex[arm])
                prev_apex[arm] = poses[arm][1].pos
            elif shape is not None and shape.arm:
                poses[arm] = _lexical_poses(kind, style, rng, strength)
                prev_apex[arm] = None
        out.append(_Event(t, kind, hands, strength, poses))
    return out, pauses


def _arm_keys(events: list[_Event], arm: str, style: StyleParams, pauses: list[tuple[float, float]],
              rest: _Pose) -> list[_Key]:
    te, pw = style.temporal_extent, style.power
    stroke_dur = 0.12 + 0.2 * te
    prep_dur = 0.2 + 0.2 * te
    hold_dur = 0.08 + 0.17 * te
    retract_dur = 0.5 + 0.4 * te
    stroke_p = 1.0 + 0.9 * pw
    overshoot = 0.15 * max(0.0, pw - 0.3)
    v_avg = 1.8 / (1.3 * _ease_peak(1.0))  # metres per second, average over a min-jerk segment
    evs = [e for e in events if arm in e.poses]
    via = None
    if style.rest_pose == "behind":
        side = _rest_pose(replace(style, rest_pose="sides"))
        via = replace(side, pos=side.pos + np.array([0.04, 0.04, -0.03]), active=0.3)
    keys = [_Key(0.0, rest)]
    at_rest = True
    for i, ev in enumerate(evs):
        prep, apex, hold = ev.poses[arm]
        last_t = keys[-1].t
        t_a = ev.t
        if t_a <= last_t + 0.1:
            continue
        t_prep: float | None = t_a - stroke_dur if t_a - stroke_dur > last_t + 0.06 else None
        first = prep if t_prep is not None else apex
        start_pose = keys[-1].pose
        dist = float(np.linalg.norm(first.pos - start_pose.pos))
        move = max(prep_dur if at_rest else 0.15, dist / v_avg)
        t0 = (t_prep if t_prep is not None else t_a) - move
        if at_rest and via is not None:  # hands behind the back come round the hips, not through them
            t0 -= 0.25
        if t0 > last_t + 0.03:
            keys.append(_Key(t0, start_pose))
        if at_rest and via is not None:
            t_via = keys[-1].t + 0.45 * ((t_prep if t_prep is not None else t_a) - keys[-1].t)
            keys.append(_Key(t_via, via))
        if t_prep is not None:
            keys.append(_Key(t_prep, prep))
        if overshoot > 0 and t_prep is not None:
            over = replace(apex, pos=apex.pos + (apex.pos - prep.pos) * overshoot)
            keys.append(_Key(t_a, over, stroke_p))
            keys.append(_Key(t_a + 0.1, apex))
            t_h = t_a + 0.1 + hold_dur
        else:
            keys.append(_Key(t_a, apex, stroke_p))
            t_h = t_a + hold_dur
        keys.append(_Key(t_h, hold))
        # Retract in long pauses (or when this hand has nothing more to do soon); hold otherwise.
        nxt = evs[i + 1] if i + 1 < len(evs) else None
        pause = next((p for p in pauses if p[0] >= t_a - 0.05), None)
        pause_before_next = pause is not None and (nxt is None or pause[0] < nxt.t)
        if nxt is None or pause_before_next or nxt.t - t_a > 1.8:
            t_r0 = t_h + 0.2
            if pause_before_next and pause is not None and pause[0] < t_h + 1.2:
                t_r0 = max(t_h + 0.05, pause[0] + 0.1)
            dur_r = max(retract_dur, float(np.linalg.norm(hold.pos - rest.pos)) / (0.8 * v_avg))
            if nxt is None or t_r0 + dur_r + prep_dur + stroke_dur + 0.2 < nxt.t:
                keys.append(_Key(t_r0, replace(hold, active=0.8)))
                if via is not None:
                    keys.append(_Key(t_r0 + 0.55 * dur_r, via))
                    dur_r += 0.25
                keys.append(_Key(t_r0 + dur_r, rest))
                at_rest = True
                continue
        at_rest = False
    return _limit_speed(keys, v_avg)


def _limit_speed(keys: list[_Key], v_avg: float) -> list[_Key]:
    """Drop keys out of time order and pull key positions back so no segment is too fast."""
    out = [keys[0]]
    for k in keys[1:]:
        if k.t <= out[-1].t + 1.0 / FPS:
            continue
        prev = out[-1]
        dt = k.t - prev.t
        limit = v_avg * dt * _ease_peak(1.0) / _ease_peak(k.ease)
        d = float(np.linalg.norm(k.pose.pos - prev.pose.pos))
        if d > limit:
            k = _Key(k.t, replace(k.pose, pos=prev.pose.pos + (k.pose.pos - prev.pose.pos) * (limit / d)), k.ease)
        out.append(k)
    return out


# ----------------------------------------------------------------------------------------------------
# Synthesis


def _interp_keys(keys: list[_Key], t: np.ndarray, collar_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arm rotations (T, 3, 4), finger shape params (T, 6) and activity (T,) from keys."""
    times = np.array([k.t for k in keys])
    pos = np.stack([k.pose.pos for k in keys])
    pole = np.stack([k.pose.pole for k in keys])
    twist = np.array([k.pose.twist for k in keys])
    aim = np.stack([k.pose.aim for k in keys])
    fingers = np.stack([k.pose.fingers for k in keys])
    active = np.array([k.pose.active for k in keys])
    ease = np.array([k.ease for k in keys])
    q = _left_arm_ik(pos, pole, twist, aim, collar_q)  # (K, 3, 4)
    if len(keys) == 1:
        n = len(t)
        return np.repeat(q, n, 0), np.repeat(fingers, n, 0), np.repeat(active, n, 0)
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2)
    u = np.clip((t - times[seg]) / (times[seg + 1] - times[seg]), 0.0, 1.0)
    s = _ease(u, ease[seg + 1])
    qa, qb = q[seg], q[seg + 1]
    rot = quat_slerp(qa, qb, np.repeat(s[:, None], 3, 1))
    fing = fingers[seg] + (fingers[seg + 1] - fingers[seg]) * s[:, None]
    act = active[seg] + (active[seg + 1] - active[seg]) * s
    return rot, fing, act


def _head_layers(events: list[_Event], t: np.ndarray, style: StyleParams, rng: np.random.Generator,
                 act_l: np.ndarray, act_r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Head pitch (+ = down), yaw, roll per frame, and a shrug pulse for the collars."""
    n = len(t)
    pitch = np.full(n, -style.head_tilt - 0.4 * style.torso_lean)
    drift = _sines(rng, t, 3, 0.04, 0.15)
    pitch += 0.025 * drift[:, 0]
    yaw = 0.05 * drift[:, 1] + 0.04 * (act_l - act_r)  # glance toward the active hand
    roll = 0.02 * drift[:, 2]
    shrug = np.zeros(n)
    amp = 0.6 + 0.8 * style.spatial_extent
    for ev in events:
        dt = t - ev.t
        if ev.kind == "beat":
            if ev.strength > 0.45:
                pitch += 0.05 * amp * ev.strength * np.exp(-0.5 * ((dt + 0.02) / 0.1) ** 2)
        elif ev.kind == "no":
            win = (dt > -0.1) & (dt < 0.8)
            env = np.where(win, np.sin(np.pi * np.clip((dt + 0.1) / 0.9, 0, 1)), 0.0)
            yaw += 0.16 * amp * env * np.sin(2.0 * np.pi * 2.4 * (dt + 0.1))
        elif ev.kind == "yes":
            win = (dt > -0.05) & (dt < 0.85)
            pitch += np.where(win, 0.14 * amp * 0.5 * (1 - np.cos(2.0 * np.pi * 2.2 * (dt + 0.05))), 0.0)
        elif ev.kind == "maybe":
            bump = np.exp(-0.5 * ((dt - 0.05) / 0.22) ** 2)
            roll += 0.1 * bump
            shrug += bump
        elif ev.kind in ("self", "you", "there", "here", "stop", "big"):
            pitch += 0.04 * amp * np.exp(-0.5 * (dt / 0.12) ** 2)
    return pitch, yaw, roll, shrug


def generate_rule_based(
    features: AudioFeatures, words: Sequence | None, style: StyleParams, seed: int = 0
) -> CanonicalMotion:
    """Co-speech gesture for the given audio features (and optional word timings), at 30 fps.

    features: AudioFeatures-like (fps, energy, onset, pitch_hz, voiced); words: objects with text, start,
    end (seconds) or None. Deterministic for a seed.
    """
    style = style.clamped()
    rng = np.random.default_rng(seed)
    src_fps = float(features.fps)
    n_src = len(np.asarray(features.energy))
    duration = n_src / src_fps if src_fps > 0 else 0.0
    n = max(1, int(round(duration * FPS)))
    t = np.arange(n) / FPS
    feats = {
        "energy": np.clip(_resample(features.energy, src_fps, n), 0.0, None),
        "onset": np.clip(_resample(features.onset, src_fps, n), 0.0, None),
        "voiced": _resample(np.asarray(features.voiced, dtype=np.float64), src_fps, n) > 0.5,
    }
    feats["energy"] = np.nan_to_num(feats["energy"])
    feats["onset"] = np.nan_to_num(feats["onset"])
    events, pauses = _plan_events(feats, words, style, rng, duration)

    # Posture: collars (shoulder raise) are static for the IK; breathing and shrugs are added on top.
    raise_angle = 0.22 * style.shoulder_raise
    collar_l = _rot([0.0, 0.0, 1.0], raise_angle)
    rest = _rest_pose(style)
    arms = {}
    for arm in ("L", "R"):
        keys = _arm_keys(events, arm, style, pauses, rest)
        arms[arm] = _interp_keys(keys, t, collar_l)
    act_l, act_r = _gauss_smooth(arms["L"][2], 4.0), _gauss_smooth(arms["R"][2], 4.0)
    activity = np.maximum(act_l, act_r)

    rot = np.zeros((n, NUM_JOINTS, 4))
    rot[..., 0] = 1.0
    root = np.tile([0.0, REST_PELVIS_HEIGHT, 0.0], (n, 1))

    # Arms and hands (right = mirror of the left-arm solution). Fingers lag the wrist a little.
    micro = _sines(rng, t, 24, 0.15, 0.7)
    lag = 2
    for arm, side, fidx in (("L", "left", _LEFT_FINGER_IDX), ("R", "right", _RIGHT_FINGER_IDX)):
        q_arm, fing, _ = arms[arm]
        fing = np.concatenate([np.repeat(fing[:1], lag, 0), fing[:-lag]], 0) if n > lag else fing
        o = 0 if arm == "L" else 12
        noise = np.stack([micro[:, o + 0:o + 3] * 0.008, micro[:, o + 3:o + 6] * 0.01,
                          micro[:, o + 6:o + 9] * 0.02], 1)
        q_arm = quat_mul(q_arm, axis_angle_to_quat(noise))
        fing = np.clip(fing + 0.03 * micro[:, o + 9:o + 10], 0.0, 1.0)
        q_f = _finger_quats(fing)
        if arm == "R":
            q_arm, q_f = _mirror_quat(q_arm), _mirror_quat(q_f)
        rot[:, J[f"{side}_shoulder"]] = q_arm[:, 0]
        rot[:, J[f"{side}_elbow"]] = q_arm[:, 1]
        rot[:, J[f"{side}_wrist"]] = q_arm[:, 2]
        rot[:, fidx] = q_f

    # Breathing (~0.25 Hz), weight shift, torso lean/twist following the active hand.
    body = _sines(rng, t, 8, 0.05, 0.6)
    f_breath = rng.uniform(0.22, 0.28)
    breath = np.sin(2.0 * np.pi * f_breath * t + rng.uniform(0, 2 * np.pi))
    sway = _sines(rng, t, 1, 0.04, 0.1)[:, 0] * (1.0 - 0.5 * activity)
    pelvis_roll = 0.012 * sway
    root[:, 0] += 0.012 * sway
    rot[:, J["pelvis"]] = _rot([0.0, 0.0, 1.0], pelvis_roll)
    leg_q = _rot([0.0, 0.0, 1.0], -pelvis_roll - 0.012 * sway / 0.85)
    rot[:, J["left_hip"]] = leg_q
    rot[:, J["right_hip"]] = leg_q
    lean = style.torso_lean + 0.035 * activity * (0.5 + style.spatial_extent)
    twist = 0.07 * (act_r - act_l) * (0.5 + style.spatial_extent)
    for j, share in (("spine1", 0.3), ("spine2", 0.35), ("spine3", 0.35)):
        pitch = share * lean - 0.008 * breath * (j != "spine1") + 0.006 * body[:, 0]
        yaw = share * twist + 0.008 * body[:, 1]
        roll = (-pelvis_roll if j == "spine1" else 0.0) + 0.004 * body[:, 2]
        rot[:, J[j]] = _euler_small(pitch, yaw, roll)
    head_pitch, head_yaw, head_roll, shrug = _head_layers(events, t, style, rng, act_l, act_r)
    rot[:, J["neck"]] = _euler_small(0.4 * head_pitch + 0.005 * body[:, 3], 0.4 * head_yaw, 0.4 * head_roll)
    rot[:, J["head"]] = _euler_small(0.6 * head_pitch + 0.005 * body[:, 4], 0.6 * head_yaw, 0.6 * head_roll)
    collar_dyn = 0.012 * (breath + 1.0) * 0.5 + 0.12 * shrug + 0.004 * body[:, 5]
    rot[:, J["left_collar"]] = quat_mul(collar_l, _rot([0.0, 0.0, 1.0], collar_dyn))
    rot[:, J["right_collar"]] = _mirror_quat(rot[:, J["left_collar"]])

    # Low-pass in rotation space; fluidity sets the width.
    sigma = 0.8 + 2.2 * style.fluidity
    rot = quat_normalize(_gauss_smooth(_continuous(rot), sigma))
    root = _gauss_smooth(root, sigma)
    motion = CanonicalMotion(rot, root, FPS, meta={"engine": "rule", "seed": int(seed),
                                                   "events": [(round(e.t, 3), e.kind, e.hands) for e in events]})
    _limit_wrist_speed(motion, 2.8)
    _resolve_penetration(motion)
    _limit_wrist_speed(motion, 2.8)
    _resolve_penetration(motion)
    return motion


# ----------------------------------------------------------------------------------------------------
# Safety passes and measurements


def wrist_speed(motion: CanonicalMotion) -> np.ndarray:
    """(T, 2) speed in m/s of the left and right wrists (first frame repeats the second)."""
    _, pos = motion.global_rotations_and_positions()
    w = pos[:, [J["left_wrist"], J["right_wrist"]]]
    if len(w) < 2:
        return np.zeros((len(w), 2))
    v = np.linalg.norm(np.diff(w, axis=0), axis=-1) * motion.fps
    return np.concatenate([v[:1], v], 0)


def _limit_wrist_speed(motion: CanonicalMotion, vmax: float) -> None:
    arm_joints = [J[f"{s}_{p}"] for s in ("left", "right") for p in ("shoulder", "elbow", "wrist")]
    for _ in range(4):
        sp = wrist_speed(motion)
        if sp.size == 0 or sp.max() <= vmax:
            return
        fast = np.any(sp > vmax, axis=1)
        region = _gauss_smooth(fast.astype(np.float64), 3.0) > 1e-3
        smoothed = quat_normalize(_gauss_smooth(_continuous(motion.rotations[:, arm_joints]), 2.5))
        motion.rotations[region[:, None].nonzero()[0][:, None], arm_joints] = smoothed[region]


def _hand_points(glob: np.ndarray, pos: np.ndarray, side: str) -> np.ndarray:
    """(T, 6, 3): wrist and the five finger tips of one hand."""
    tips = [J[f"{side}_{f}"] for f in _FINGER_TIPS]
    tip_pos = pos[:, tips] + quat_rotate(glob[:, tips], np.broadcast_to(REST_BONE_VECTORS[tips], pos[:, tips].shape))
    return np.concatenate([pos[:, [J[f"{side}_wrist"]]], tip_pos], 1)


def _torso_distance(points: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (T, P) of points to the spine polyline and the closest axis points (T, P, 3)."""
    chain = pos[:, [J[n] for n in TORSO_CHAIN]]  # (T, S+1, 3)
    a, b = chain[:, :-1], chain[:, 1:]  # (T, S, 3)
    ab = b - a
    ap = points[:, :, None, :] - a[:, None]  # (T, P, S, 3)
    u = np.clip(np.sum(ap * ab[:, None], -1) / np.maximum(np.sum(ab * ab, -1)[:, None], 1e-12), 0.0, 1.0)
    closest = a[:, None] + u[..., None] * ab[:, None]
    d = np.linalg.norm(points[:, :, None, :] - closest, axis=-1)
    k = np.argmin(d, axis=-1)
    return np.take_along_axis(d, k[..., None], -1)[..., 0], np.take_along_axis(closest, k[..., None, None], 2)[:, :, 0]


def _clearances(glob: np.ndarray, pos: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clearance (T, P) of a hand's points to the body, the points, and the outward push directions."""
    pts = _hand_points(glob, pos, side)
    d_t, closest = _torso_distance(pts, pos)
    head_c = pos[:, J["head"]] + quat_rotate(glob[:, J["head"]], np.broadcast_to(_HEAD_CENTRE_OFFSET,
                                                                                 (len(pos), 3)))
    d_h = np.linalg.norm(pts - head_c[:, None], axis=-1)
    c_t, c_h = d_t - TORSO_RADIUS, d_h - HEAD_RADIUS
    use_head = c_h < c_t
    centre = np.where(use_head[..., None], head_c[:, None], closest)
    push = pts - centre
    return np.minimum(c_t, c_h), pts, push


def min_hand_body_clearance(motion: CanonicalMotion) -> float:
    """Smallest distance (m) over all frames between a hand point (wrist, finger tips) and the body model
    (torso capsule along the spine chain, radius TORSO_RADIUS; head sphere). Negative means penetration."""
    glob, pos = motion.global_rotations_and_positions()
    return float(min(_clearances(glob, pos, s)[0].min() for s in ("left", "right")))


def _dilate(v: np.ndarray, r: int) -> np.ndarray:
    """For each frame, the vector of largest norm within +-r frames (v: (T, 3))."""
    mag = np.linalg.norm(v, axis=-1)
    n = len(v)
    best = np.arange(n)
    for k in range(-r, r + 1):
        idx = np.clip(np.arange(n) + k, 0, n - 1)
        better = mag[idx] > mag[best]
        best = np.where(better, idx, best)
    return v[best]


def _resolve_penetration(motion: CanonicalMotion, margin: float = _CLEARANCE_MARGIN) -> None:
    """Rotate the offending shoulder so hand points leave the torso capsule / head sphere."""
    for it in range(12):
        glob, pos = motion.global_rotations_and_positions()
        changed = False
        for side in ("left", "right"):
            clr, pts, push = _clearances(glob, pos, side)
            worst = np.argmin(clr, axis=1)
            c = clr[np.arange(len(clr)), worst]
            bad = c < margin
            if not np.any(bad):
                continue
            changed = True
            sh, col = J[f"{side}_shoulder"], J[f"{side}_collar"]
            p = pts[np.arange(len(clr)), worst]
            fwd = quat_rotate(glob[:, J["spine3"]], np.broadcast_to([0.0, 0.0, 1.0], (len(p), 3)))
            n_dir = push[np.arange(len(clr)), worst]
            n_dir = n_dir / np.maximum(np.linalg.norm(n_dir, axis=-1, keepdims=True), 1e-9) + 0.5 * fwd
            n_dir /= np.linalg.norm(n_dir, axis=-1, keepdims=True)
            r = p - pos[:, sh]
            axis = np.cross(r, n_dir)
            axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
            angle = np.where(bad, (margin - c + 0.005) / np.maximum(np.linalg.norm(r, axis=-1), 0.1), 0.0)
            local_axis = quat_rotate(quat_conj(glob[:, col]), axis)
            corr = local_axis * angle[:, None]
            if it < 10:  # spread the correction over neighbouring frames so it does not pop
                corr = _gauss_smooth(_dilate(corr, 4), 2.0)
            motion.rotations[:, sh] = quat_normalize(quat_mul(axis_angle_to_quat(corr), motion.rotations[:, sh]))
        if not changed:
            return


