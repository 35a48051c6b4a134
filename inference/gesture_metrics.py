"""Measurements of gesture motion: wrist speed, extent and jerk, motion beats and BEAT's beat alignment,
and gesture statistics from the rule engine's event list. numpy only.

Beat alignment follows BEAT (Liu et al. 2022) / EMAGE: audio beats are librosa onsets; motion beats are
local minima of wrist speed; the score is the mean over audio onsets of exp(-d^2 / (2 sigma^2)) with d the
distance to the nearest motion beat (sigma 0.3 s). Motion beats here: strict local minima (2 frames each
side) of each wrist's lightly smoothed speed, kept when the speed within +-0.25 s of the minimum reaches
``threshold`` m/s above it, so the jitter of a resting hand gives no beats; the two wrists' beats are pooled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .motion import CanonicalMotion
from .skeleton import JOINT_INDEX, forward_kinematics

WRISTS = ("left_wrist", "right_wrist")


# One FK for the whole project; the old name stays for callers of this module.
fast_fk = forward_kinematics


def joint_positions(motion: CanonicalMotion) -> np.ndarray:
    """(T, 52, 3) world joint positions."""
    return fast_fk(motion.rotations, motion.root)[1]


def _speed(x: np.ndarray, fps: float) -> np.ndarray:
    """Speed (T, ...) of positions (T, ..., 3): central differences, one-sided at the ends."""
    if len(x) < 2:
        return np.zeros(x.shape[:-1])
    v = np.gradient(x, axis=0) * fps
    return np.linalg.norm(v, axis=-1)


def hand_speed(motion: CanonicalMotion, pos: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) speed in m/s of the left and right wrists."""
    pos = joint_positions(motion) if pos is None else pos
    return _speed(pos[:, [JOINT_INDEX[w] for w in WRISTS]], motion.fps)


def hand_extent(motion: CanonicalMotion, pos: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) distance in metres of each wrist from the body axis (the line through pelvis and neck):
    how far out from the body the hands are (about 0.2 m with the arms hanging at the sides)."""
    pos = joint_positions(motion) if pos is None else pos
    a, b = pos[:, JOINT_INDEX["pelvis"]], pos[:, JOINT_INDEX["neck"]]
    axis = (b - a) / np.maximum(np.linalg.norm(b - a, axis=-1, keepdims=True), 1e-9)
    w = pos[:, [JOINT_INDEX[x] for x in WRISTS]] - a[:, None]
    along = np.sum(w * axis[:, None], -1, keepdims=True)
    return np.linalg.norm(w - along * axis[:, None], axis=-1)


def jerk(motion: CanonicalMotion, pos: np.ndarray | None = None) -> float:
    """Mean magnitude of the wrists' jerk (third time derivative of position), m/s^3."""
    pos = joint_positions(motion) if pos is None else pos
    w = pos[:, [JOINT_INDEX[x] for x in WRISTS]]
    if len(w) < 4:
        return 0.0
    j = np.diff(w, n=3, axis=0) * motion.fps**3
    return float(np.mean(np.linalg.norm(j, axis=-1)))


def _smooth1(x: np.ndarray) -> np.ndarray:
    k = np.array([0.25, 0.5, 0.25])
    pad = np.concatenate([x[:1], x, x[-1:]])
    return k[0] * pad[:-2] + k[1] * pad[1:-1] + k[2] * pad[2:]


def speed_minima(speed: np.ndarray, fps: float, threshold: float = 0.1, order: int = 2,
                 window_s: float = 0.25) -> np.ndarray:
    """Frame indices of motion beats in one speed curve (see the module docstring)."""
    s = _smooth1(np.asarray(speed, dtype=np.float64))
    n = len(s)
    if n < 2 * order + 1:
        return np.zeros(0, dtype=int)
    core = s[order:n - order]
    is_min = np.ones(len(core), dtype=bool)
    for k in range(1, order + 1):
        is_min &= core < s[order - k:n - order - k]
        is_min &= core < s[order + k:n - order + k]
    idx = np.flatnonzero(is_min) + order
    if len(idx) == 0:
        return idx
    w = max(1, int(round(window_s * fps)))
    padded = np.concatenate([np.full(w, -np.inf), s, np.full(w, -np.inf)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)[idx]
    return idx[windows.max(axis=1) - s[idx] >= threshold]


def motion_beats(motion: CanonicalMotion, threshold: float = 0.1, pos: np.ndarray | None = None) -> np.ndarray:
    """Times in seconds (sorted) of motion beats of either wrist."""
    sp = hand_speed(motion, pos)
    idx = np.concatenate([speed_minima(sp[:, k], motion.fps, threshold) for k in range(sp.shape[1])])
    return np.unique(idx) / motion.fps


def beat_alignment(onset_times: Sequence[float] | np.ndarray, motion: CanonicalMotion | np.ndarray,
                   sigma: float = 0.3) -> float:
    """BEAT's beat-alignment score of a motion (or an array of motion-beat times) against audio onset
    times (seconds): mean over onsets of exp(-d^2 / (2 sigma^2)), d = distance to the nearest motion
    beat. 0 when the motion has no beats; NaN when there are no onsets."""
    onsets = np.asarray(onset_times, dtype=np.float64).ravel()
    beats = motion_beats(motion) if isinstance(motion, CanonicalMotion) else np.asarray(motion, np.float64).ravel()
    if len(onsets) == 0:
        return math.nan
    if len(beats) == 0:
        return 0.0
    beats = np.sort(beats)
    i = np.searchsorted(beats, onsets)
    lo = beats[np.clip(i - 1, 0, len(beats) - 1)]
    hi = beats[np.clip(i, 0, len(beats) - 1)]
    d = np.minimum(np.abs(onsets - lo), np.abs(onsets - hi))
    return float(np.mean(np.exp(-(d**2) / (2.0 * sigma**2))))


def event_stats(motion: CanonicalMotion, speech_s: float | None = None) -> dict[str, float]:
    """Gesture statistics from ``motion.meta["events"]`` (rule engine): count, rate per second (of
    ``speech_s`` when given, else of the clip), mean hold time in seconds, and the share of two-handed,
    beat, deictic, iconic and metaphoric gestures."""
    events = [e for e in motion.meta.get("events", []) if isinstance(e, dict) and e.get("realized", True)
              and e.get("type") != "head"]
    dur = speech_s if speech_s else motion.duration
    n = len(events)
    holds = [float(e["hold"][1] - e["hold"][0]) for e in events if e.get("hold")]
    out = {
        "gestures": float(n),
        "rate_per_s": n / dur if dur > 0 else 0.0,
        "mean_hold_s": float(np.mean(holds)) if holds else 0.0,
        "two_handed": sum(e["hands"] == "B" for e in events) / n if n else 0.0,
    }
    for kind in ("beat", "deictic", "iconic", "metaphoric"):
        out[kind] = sum(e["type"] == kind for e in events) / n if n else 0.0
    return out
