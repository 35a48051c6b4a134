"""BEAT (120 fps) and ZEGGS (60 fps) takes: BVH + wav (+ Praat TextGrid) -> Samples on the canonical skeleton.

Retargeting is by rest pose, per file (T-poses differ between files; ZEGGS's rest is not our T-pose):
- C (3x3) maps the file's axes to the canonical ones (+X left, +Y up, +Z forward), read from the file's own rest
  joints (left-right shoulders, hips-to-head), snapped to the nearest axes.
- Each canonical joint j takes the world rotation G_s of its source joint (for merged chains, the last source joint
  before the next mapped one, which composes the chain: Spine1+Spine2 -> spine2, Neck+Neck1 -> neck), expressed in
  canonical axes, times a rest correction S_j: the shortest arc taking the canonical T-pose bone direction onto the
  file's rest bone direction. So G_j = C G_s C^T S_j points the canonical bone where the file's bone points at rest
  and turns with it. A final per-frame swing (zero for unmerged joints) aims the bone at where the file's child
  joint actually is, so canonical bone directions equal the file's frame by frame. The pelvis gets no direction
  match (a hip bone's direction is arbitrary; the legs and spine are matched themselves).
- Canonical local rotations are parent_global^T @ global; canonical joints with no source joint follow their parent.
- Root: the file's hip position in canonical axes, scaled by (canonical pelvis height / the file's rest hip height
  above its lowest joint), which converts cm to m and keeps the canonical feet on the floor.
- Then: low-pass (Gaussian, sigma = half the decimation ratio in source frames) and slerp to 30 fps.

Known defects handled: headers that claim the wrong frame time (`resolve_frame_time`), wav and BVH of different
length (the overlap is kept), mirrored ZEGGS takes (`meta["mirrored"]`; a take and its mirror share a split).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ...inference.audio import load_audio
from ...inference.errors import GesturaError
from ...inference.motion import CanonicalMotion, resample_motion
from ...inference.rotations import matrix_to_quat, quat_between, quat_make_continuous, quat_normalize, quat_to_matrix
from ...inference.skeleton import (
    JOINT_NAMES,
    NUM_JOINTS,
    PARENTS,
    PRIMARY_CHILD,
    REST_BONE_VECTORS,
    REST_PELVIS_HEIGHT,
)
from ...inference.transcript import Word, parse_textgrid
from .bvh_reader import Bvh, BvhError, read_bvh
from .format import SAMPLE_RATE, Sample, clip_words, split_of

TARGET_FPS = 30.0
STANDARD_FPS = (120.0, 60.0, 30.0)
FRAME_TIME_TOLERANCE = 0.10  # relative disagreement of motion and audio durations that flags a wrong header
BEAT_EMOTIONS = ("neutral", "happiness", "anger", "sadness", "contempt", "surprise", "fear", "disgust")
_NO_DIRECTION_MATCH = frozenset({"pelvis"})


# --- joint mapping ----------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    """'mixamorig:Left_Hand' -> 'lefthand': namespace, case and separators do not matter."""
    return re.sub(r"[^a-z0-9]", "", name.rsplit(":", 1)[-1].lower())


def _candidates() -> dict[str, tuple[str, ...]]:
    """Canonical joint -> source names (normalised), first present wins. BEAT and ZEGGS spell fingers
    `LeftHandIndex1`; `LeftIndex1` and `LeftFingerIndex1` are accepted too."""
    table: dict[str, tuple[str, ...]] = {
        "pelvis": ("hips", "pelvis", "hip"), "spine1": ("spine",), "spine2": ("spine1", "chest"),
        "spine3": ("spine3", "spine2", "upperchest"), "neck": ("neck",), "head": ("head",),
    }
    limbs = {"collar": ("shoulder", "clavicle"), "shoulder": ("arm", "upperarm"), "elbow": ("forearm", "lowerarm"),
             "wrist": ("hand",), "hip": ("upleg", "upperleg", "thigh"), "knee": ("leg", "lowerleg", "shin"),
             "ankle": ("foot",), "foot": ("toebase", "toe", "toes")}
    for side in ("left", "right"):
        for joint, names in limbs.items():
            table[f"{side}_{joint}"] = tuple(side + n for n in names)
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            for seg in (1, 2, 3):
                table[f"{side}_{finger}{seg}"] = (f"{side}hand{finger}{seg}", f"{side}{finger}{seg}",
                                                  f"{side}handfinger{finger}{seg}", f"{side}finger{finger}{seg}")
    return table


_CANDIDATES = _candidates()


def map_joints(names: list[str]) -> list[int]:
    """Per canonical joint, the index of its source joint in `names`, or -1."""
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        index.setdefault(_norm(n), i)
    src = [next((index[c] for c in _CANDIDATES[j] if c in index), -1) for j in JOINT_NAMES]
    if src[0] < 0:
        raise BvhError(f"no hip joint among {names[:5]}...: not a BEAT/ZEGGS-like skeleton")
    return src


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _snap(v: np.ndarray, max_deg: float = 25.0) -> np.ndarray:
    k = int(np.argmax(np.abs(v)))
    axis = np.zeros(3)
    axis[k] = np.sign(v[k])
    return axis if float(np.dot(_unit(v), axis)) >= np.cos(np.radians(max_deg)) else _unit(v)


def facing_matrix(rest: np.ndarray, src: list[int]) -> np.ndarray:
    """C: the file's axes -> canonical (+X the character's left, +Y up, +Z forward), from its rest joints."""
    def first(*joints: str) -> int:
        return next((src[JOINT_NAMES.index(j)] for j in joints if src[JOINT_NAMES.index(j)] >= 0), -1)

    pairs = [("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"), ("left_hip", "right_hip")]
    left = next((rest[a] - rest[b] for a, b in ((first(x), first(y)) for x, y in pairs) if a >= 0 and b >= 0), None)
    top = first("head", "neck", "spine3", "spine2")
    if left is None or top < 0:
        raise BvhError("cannot tell the character's facing: no left/right shoulders or hips, or no head")
    up = _snap(_unit(rest[top] - rest[src[0]]))
    left = _snap(_unit(left - np.dot(left, up) * up))
    if abs(float(np.dot(left, up))) > 1e-6:  # snapping broke orthogonality: keep up, re-orthogonalise left
        left = _unit(left - np.dot(left, up) * up)
    forward = np.cross(left, up)
    return np.stack([left, up, forward])


def _rotations_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return quat_to_matrix(quat_between(a, b))


def _is_descendant(parents: list[int], joint: int, ancestor: int) -> bool:
    while joint >= 0:
        if joint == ancestor:
            return True
        joint = parents[joint]
    return False


def _direction_target(bvh: Bvh, src: list[int], j: int) -> tuple[str, int | np.ndarray] | None:
    """Where canonical joint j's bone points in the file: the source joint of its primary child, else the
    source joint's end child (names with 'end' first), else its End Site."""
    child = PRIMARY_CHILD[j]
    if child >= 0 and src[child] >= 0:
        return "joint", src[child]
    s = src[j]
    kids = [k for k, p in enumerate(bvh.parents) if p == s]
    if kids:
        return "joint", min(kids, key=lambda k: (0 if "end" in _norm(bvh.names[k]) else 1, k))
    if s in bvh.end_sites:
        return "end", bvh.end_sites[s]
    return None


def retarget_bvh(bvh: Bvh) -> tuple[np.ndarray, np.ndarray, dict]:
    """Canonical local rotations (T, 52, 4), root (T, 3) in metres, and notes, at the file's frame rate."""
    src = map_joints(bvh.names)
    rest = bvh.rest_positions()
    c = facing_matrix(rest, src)
    g_rot, g_pos = bvh.global_transforms()
    n = bvh.num_frames
    glob = np.empty((n, NUM_JOINTS, 3, 3))
    for j, p in enumerate(PARENTS):
        s = src[j]
        if s < 0:
            glob[:, j] = glob[:, p]  # the pelvis is always mapped, so p >= 0 here
            continue
        target = _direction_target(bvh, src, j)
        r = s
        if target is not None and target[0] == "joint":
            above = bvh.parents[int(target[1])]
            r = above if _is_descendant(bvh.parents, above, s) else s
        g = c @ g_rot[:, r] @ c.T
        if target is None or JOINT_NAMES[j] in _NO_DIRECTION_MATCH:
            glob[:, j] = g
            continue
        if target[0] == "joint":
            t = int(target[1])
            rest_dir = c @ (rest[t] - rest[s])
            actual = (g_pos[:, t] - g_pos[:, s]) @ c.T
        else:
            end = np.asarray(target[1])
            rest_dir = c @ end
            actual = np.einsum("tab,b->ta", g_rot[:, s], end) @ c.T
        g0 = g @ _rotations_between(REST_BONE_VECTORS[j], rest_dir)
        pred = g0 @ REST_BONE_VECTORS[j]
        glob[:, j] = _rotations_between(pred, actual) @ g0
    local = np.empty_like(glob)
    local[:, 0] = glob[:, 0]
    for j, p in enumerate(PARENTS):
        if p >= 0:
            local[:, j] = np.swapaxes(glob[:, p], -1, -2) @ glob[:, j]
    quats = quat_make_continuous(matrix_to_quat(local))

    rest_c = rest @ c.T
    mapped = [s for s in src if s >= 0]
    hip_height = float(rest_c[src[0], 1] - rest_c[mapped, 1].min())
    scale = REST_PELVIS_HEIGHT / hip_height if hip_height > 1e-6 else 0.01
    root = (g_pos[:, src[0]] @ c.T) * scale
    notes = {"root_scale": scale, "facing": c.tolist(), "unmapped": [JOINT_NAMES[j] for j in range(52) if src[j] < 0]}
    return quats, root, notes


# --- time -------------------------------------------------------------------------------------------------


def resolve_frame_time(n_frames: int, claimed: float, audio_seconds: float) -> tuple[float, str]:
    """The frame time to use, and a note when the header's was wrong: if the claimed frame time makes the motion's
    duration disagree with the audio by more than 10 % while a standard rate (120, 60, 30 fps) agrees, take that."""
    if n_frames <= 0 or audio_seconds <= 0:
        return claimed, ""

    def error(dt: float) -> float:
        return abs(n_frames * dt - audio_seconds) / audio_seconds

    if error(claimed) <= FRAME_TIME_TOLERANCE:
        return claimed, ""
    best = min(STANDARD_FPS, key=lambda f: error(1.0 / f))
    if error(1.0 / best) > FRAME_TIME_TOLERANCE:
        return claimed, ""
    return 1.0 / best, (
        f"header frame time {claimed:.6f} s ({1 / claimed:.2f} fps) gives {n_frames * claimed:.2f} s of motion for "
        f"{audio_seconds:.2f} s of audio; using {best:.0f} fps ({n_frames / best:.2f} s)"
    )


def to_target_fps(motion: CanonicalMotion, fps: float = TARGET_FPS) -> CanonicalMotion:
    """Low-pass, then slerp to `fps` (duration kept). Decimating without the filter would alias fast motion."""
    from scipy.ndimage import gaussian_filter1d

    ratio = motion.fps / fps
    if ratio > 1.0 + 1e-6 and motion.num_frames > 1:
        sigma = 0.5 * ratio
        rot = quat_normalize(gaussian_filter1d(quat_make_continuous(motion.rotations), sigma, axis=0, mode="nearest"))
        root = gaussian_filter1d(motion.root, sigma, axis=0, mode="nearest")
        motion = CanonicalMotion(rot, root, motion.fps, dict(motion.meta))
    return resample_motion(motion, fps)


# --- takes ------------------------------------------------------------------------------------------------


def read_take(
    bvh_path: str | Path, wav_path: str | Path, textgrid_path: str | Path | None = None, *, source: str = "",
    speaker: str = "", emotion: str = "", meta: dict | None = None,
) -> Sample:
    """One BVH + wav (+ TextGrid) take as a Sample at 30 fps, cut to the overlap of motion and audio."""
    bvh = read_bvh(bvh_path)
    audio = load_audio(wav_path, sample_rate=SAMPLE_RATE)
    meta = dict(meta or {})
    frame_time, note = resolve_frame_time(bvh.num_frames, bvh.frame_time, audio.duration)
    if note:
        warnings.warn(f"{bvh_path}: {note}", stacklevel=2)
        meta["frame_time_fixed"] = note
    quats, root, notes = retarget_bvh(bvh)
    meta.update(notes, source_fps=1.0 / frame_time)
    motion = to_target_fps(CanonicalMotion(quats, root, 1.0 / frame_time))

    n = min(motion.num_frames, int(np.floor(audio.duration * TARGET_FPS + 1e-6)))  # the overlap
    meta["trimmed_s"] = {"motion": (motion.num_frames - n) / TARGET_FPS, "audio": audio.duration - n / TARGET_FPS}
    duration = n / TARGET_FPS
    words: list[Word] = parse_textgrid(textgrid_path) if textgrid_path and Path(textgrid_path).exists() else []
    return Sample(
        rotations=motion.rotations[:n], root=motion.root[:n],
        audio=audio.samples[: int(round(duration * SAMPLE_RATE))], words=clip_words(words, duration),
        source=source or Path(bvh_path).stem, speaker=speaker, emotion=emotion, meta=meta,
    )


def _sibling(path: Path, suffixes: tuple[str, ...], folders: tuple[str, ...] = ()) -> Path | None:
    """A file with the same stem next to `path` (or in sibling folders such as ../wave16k)."""
    for folder in (path.parent, *(path.parent.parent / f for f in folders)):
        for suffix in suffixes:
            candidate = folder / (path.stem + suffix)
            if candidate.exists():
                return candidate
    return None


_EMOTION_WORDS = {e: e for e in BEAT_EMOTIONS} | {
    "happy": "happiness", "angry": "anger", "sad": "sadness", "surprised": "surprise", "fearful": "fear",
    "afraid": "fear", "disgusted": "disgust", "contemptuous": "contempt",
}


def read_emotion_csv(path: str | Path) -> str:
    """The dominant emotion of a BEAT emotion .csv: emotion names anywhere, or one code 0-7 (BEAT's order) per row."""
    counts: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f):
            cells = [c.strip().lower() for c in row if c.strip()]
            labels = [_EMOTION_WORDS[c] for c in cells if c in _EMOTION_WORDS]
            if not labels and len(cells) == 1 and cells[0].isdigit() and int(cells[0]) < len(BEAT_EMOTIONS):
                labels = [BEAT_EMOTIONS[int(cells[0])]]
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""


def beat_emotion_from_name(stem: str) -> str:
    """BEAT's own loader convention: in speech takes, the sequence number (4th field) gives the emotion."""
    parts = stem.split("_")
    if len(parts) < 4 or not parts[3].isdigit():
        return ""
    seq = int(parts[3])
    for upper, label in zip((64, 72, 80, 86, 94, 102, 110, 118), BEAT_EMOTIONS, strict=True):
        if seq <= upper:
            return label if seq >= 1 else ""
    return ""


def read_beat(bvh_path: str | Path) -> Sample:
    """A BEAT take `<speaker id>_<name>_<type>_<seq>_<seq>.bvh` with its .wav, .TextGrid and emotion .csv."""
    path = Path(bvh_path)
    wav = _sibling(path, (".wav",), ("wave16k", "wav"))
    if wav is None:
        raise FileNotFoundError(f"no .wav for {path} (looked next to it and in ../wave16k, ../wav)")
    emo_csv = _sibling(path, (".csv",), ("emo", "emotion"))
    emotion = (read_emotion_csv(emo_csv) if emo_csv else "") or beat_emotion_from_name(path.stem)
    parts = path.stem.split("_")
    return read_take(
        path, wav, _sibling(path, (".TextGrid", ".textgrid"), ("textgrid", "TextGrid")),
        source=path.stem, speaker=parts[1] if len(parts) > 1 else "", emotion=emotion,
        meta={"dataset": "beat", "split": split_of(path.stem)},
    )


def zeggs_style(stem: str) -> str:
    """`015_Happy_4_x_1_0` -> 'Happy'."""
    parts = stem.split("_")
    return parts[1] if len(parts) > 1 and parts[0].isdigit() else ""


def zeggs_group(stem: str) -> str:
    """The take without its mirror marker: a take and its mirrored copy share a split."""
    return re.sub(r"_mirror_x", "", stem)


def read_zeggs(bvh_path: str | Path) -> Sample:
    """A ZEGGS take `NNN_<Style>_..._x_1_0.bvh` with its .wav (and a .TextGrid if present)."""
    path = Path(bvh_path)
    wav = _sibling(path, (".wav",), ("wav",))
    if wav is None:
        raise FileNotFoundError(f"no .wav for {path}")
    return read_take(
        path, wav, _sibling(path, (".TextGrid", ".textgrid"), ("textgrid", "TextGrid")), source=path.stem,
        meta={"dataset": "zeggs", "style": zeggs_style(path.stem), "mirrored": "_mirror_x" in path.stem,
              "split": split_of(zeggs_group(path.stem))},
    )


def _iter(
    root: str | Path, split: str | None, reader: Callable[[Path], Sample], group: Callable[[str], str]
) -> Iterator[Sample]:
    for path in sorted(Path(root).rglob("*.bvh")):
        if split and split_of(group(path.stem)) != split:
            continue
        try:
            yield reader(path)
        except (FileNotFoundError, ValueError, GesturaError) as exc:  # BvhError is a ValueError
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)


def iter_beat(root: str | Path, split: str | None = None) -> Iterator[Sample]:
    """Every BEAT take under `root` (one split by `split_of(stem)`, or all); unreadable takes are skipped."""
    return _iter(root, split, read_beat, lambda s: s)


def iter_zeggs(root: str | Path, split: str | None = None) -> Iterator[Sample]:
    return _iter(root, split, read_zeggs, zeggs_group)
