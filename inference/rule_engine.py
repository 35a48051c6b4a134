"""Rule-based co-speech gesture engine v2 (numpy only, deterministic for a seed, 30 fps).

How it works, in short:
1. Prosody: a prominence curve combines onset strength, energy and pitch excursion above the speaker's
   running median (semitones, voiced frames only); its peaks while voiced are the pitch accents /
   stressed syllables. Voiced runs separated by pauses of PHRASE_PAUSE or more are phrases; pauses of
   LONG_PAUSE or more end gesture units.
2. Words: a lexicon of English lemmas (lemminflect: "pointing" -> point, "ideas" -> idea, "bigger" -> big)
   maps words to deictic, iconic and metaphoric gestures (and head-only emblems). A lexical stroke's apex
   lands on the strongest accent inside the word (its stressed syllable), or its start. A transcript that
   is not English gets no lexical gestures: prosody alone.
3. Planning, per style: beats on the strongest accents, at most one per ``gesture_rate``-dependent
   spacing, plus the lexical gestures they make way for; one hand per phrase (dominant by ``handedness``)
   unless the gesture is two-handed; never the same gesture twice in a row.
4. Each gesture (Kendon: preparation, stroke, hold, retraction) becomes keyposes for one or both arms: a
   wrist target in the chest frame, an elbow pole, a forearm twist, a hand aim and a hand shape (open
   palm, point, pinch, fist, relaxed, ...). An analytic two-bone IK turns them into shoulder/elbow/wrist
   rotations. Hands hold in short pauses and retract to the rest pose in long ones (or when idle).
5. Keyposes are interpolated in rotation space with minimum-jerk easing (``power`` sharpens the stroke
   and adds an overshoot). Fingers follow the wrist through a slightly under-damped filter (overlap and
   follow-through). Head (nods on accents, shakes on negation, glances), torso (lean, twist following the
   active hand, breathing, posture shifts at topic boundaries), weight shift and micro motion are layers.
   A Gaussian low-pass per body part whose width follows that part's ``fluidity`` smooths everything.
6. Safety: wrist speed is limited when keys are laid out and again on the result, and a final pass pushes
   the shoulder outward/forward wherever a hand point enters the torso capsule or the head sphere.

Per-body-part styles (style.PartStyles): each arm follows the plan of its own style, the hands modulate
the finger shapes of their arm's gestures with their own style, and head, torso and lower body layers use
theirs, all from the same seed, so a part's motion carries its style's statistics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .gesture_metrics import fast_fk
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
    BODY_PARTS,
    JOINT_INDEX,
    NUM_JOINTS,
    REST_BONE_VECTORS,
    REST_OFFSETS,
    REST_PELVIS_HEIGHT,
)
from .style import PartStyles, StyleParams, english_word_known, lemma_forms

if TYPE_CHECKING:
    from .audio import AudioFeatures

FPS = 30.0
J = JOINT_INDEX
ENGINE_VERSION = 2
PHRASE_PAUSE = 0.3  # s: a pause at least this long ends a phrase (the hand may change)
LONG_PAUSE = 0.7  # s: a pause at least this long ends a gesture unit (the hands retract to rest)

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
CUP = np.array([0.32, 0.34, 0.38, 0.42, 0.35, 0.25])
HAND_SHAPES: dict[str, np.ndarray] = {"relaxed": RELAXED, "open": OPEN, "point": POINT, "pinch": PINCH,
                                      "fist": FIST, "flat": FLAT, "cup": CUP}

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
    type: str = "metaphoric"  # deictic, iconic, metaphoric; "head" for head-only emblems


LEXICAL: dict[str, _Shape] = {
    # deictic
    "self": _Shape((-0.10, -0.17, 0.27), (0.03, -0.04, 0.05), 0.0, (-1.0, 0.1, -0.25), (0.12, 0.12, 0.15, 0.18,
                   0.15, 0.1), False, type="deictic"),
    "you": _Shape((-0.05, -0.12, 0.42), (0.0, 0.04, -0.08), -0.9, (-0.12, 0.05, 1.0), tuple(POINT), False,
                  type="deictic"),
    "here": _Shape((-0.04, -0.30, 0.34), (0.0, 0.07, -0.04), -1.0, (-0.05, -0.75, 0.66), tuple(POINT), False,
                   type="deictic"),
    "there": _Shape((0.22, -0.14, 0.30), (-0.10, 0.0, -0.02), -0.7, (0.75, 0.0, 0.66), tuple(POINT), False,
                    type="deictic"),
    "point": _Shape((0.10, -0.08, 0.42), (-0.06, -0.06, -0.10), -0.8, (0.3, 0.05, 0.95), tuple(POINT), False,
                    type="deictic"),
    # iconic
    "big": _Shape((0.24, -0.20, 0.30), (-0.18, -0.02, 0.0), 1.0, (0.4, 0.0, 0.9), tuple(OPEN), True, type="iconic"),
    "small": _Shape((-0.12, -0.22, 0.32), (0.06, 0.02, 0.0), 0.3, (-0.3, 0.2, 1.0), tuple(PINCH), True,
                    type="iconic"),
    "up": _Shape((0.04, 0.0, 0.30), (0.0, -0.16, -0.04), 1.3, (0.0, 0.6, 0.8), tuple(OPEN), False, type="iconic"),
    "down": _Shape((0.04, -0.34, 0.30), (0.0, 0.14, -0.02), -1.4, (0.0, -0.3, 1.0), tuple(FLAT), False,
                   type="iconic"),
    "round": _Shape((-0.06, -0.20, 0.34), (0.08, 0.06, -0.04), 0.3, (-0.6, 0.0, 0.8), tuple(CUP), True,
                    type="iconic"),
    # metaphoric
    "idea": _Shape((-0.02, 0.10, 0.14), (0.0, -0.08, 0.02), -0.3, (-0.25, 1.0, 0.1), tuple(POINT), False,
                   pole=(1.0, -0.6, -0.2)),
    "question": _Shape((0.10, -0.24, 0.36), (-0.10, -0.02, -0.08), 1.6, (0.25, 0.1, 1.0), tuple(OPEN), False,
                       head="tilt"),
    "all": _Shape((0.30, -0.26, 0.24), (-0.24, 0.03, 0.04), -1.3, (0.6, -0.1, 0.8), tuple(FLAT), True),
    "together": _Shape((-0.10, -0.22, 0.33), (0.16, 0.0, -0.02), 0.0, (-0.2, 0.1, 1.0), tuple(OPEN), True),
    "stop": _Shape((-0.02, -0.08, 0.40), (0.0, -0.06, -0.10), -1.5, (0.0, 1.0, 0.2), tuple(FLAT), False),
    "maybe": _Shape((0.10, -0.30, 0.27), (-0.05, 0.05, -0.03), 1.6, (0.3, 0.1, 1.0), tuple(OPEN), True,
                    head="tilt"),
    "no": _Shape((0.08, -0.25, 0.30), (-0.16, 0.02, 0.0), -1.4, None, tuple(FLAT), False, head="shake"),
    # head only
    "yes": _Shape((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, None, tuple(OPEN), False, arm=False, head="nod",
                  type="head"),
}
GESTURE_TYPES: dict[str, str] = {"beat": "beat", **{k: s.type for k, s in LEXICAL.items()}}

# English lemmas (lemminflect's, lower case) -> gesture. Inflected forms find their lemma at run time.
LEMMA_TO_GESTURE: dict[str, str] = {
    **dict.fromkeys(("i", "me", "my", "myself", "mine", "we", "us", "our", "ours", "ourselves"), "self"),
    **dict.fromkeys(("you", "your", "yours", "yourself", "yourselves"), "you"),
    **dict.fromkeys(("this", "here", "these"), "here"),
    **dict.fromkeys(("there", "that", "those", "over"), "there"),
    **dict.fromkeys(("point", "show", "look", "direction", "toward", "towards"), "point"),
    **dict.fromkeys(("big", "huge", "large", "enormous", "massive", "giant", "vast", "wide", "broad", "grow",
                     "expand", "increase"), "big"),
    **dict.fromkeys(("small", "little", "tiny", "bit", "few", "shrink", "narrow", "detail", "precise"), "small"),
    **dict.fromkeys(("up", "rise", "raise", "high", "top", "above", "lift", "climb"), "up"),
    **dict.fromkeys(("down", "fall", "drop", "low", "below", "bottom", "under", "decrease", "reduce"), "down"),
    **dict.fromkeys(("round", "circle", "around", "ball", "world", "globe", "cycle", "sphere"), "round"),
    **dict.fromkeys(("idea", "think", "thought", "imagine", "remember", "believe", "mind", "understand",
                     "know", "concept"), "idea"),
    **dict.fromkeys(("question", "ask", "why", "wonder", "how"), "question"),
    **dict.fromkeys(("all", "everything", "every", "everyone", "everybody", "whole", "entire", "total",
                     "always"), "all"),
    **dict.fromkeys(("together", "connect", "combine", "join", "between", "unite", "link", "both"), "together"),
    **dict.fromkeys(("stop", "wait", "hold", "halt", "enough"), "stop"),
    **dict.fromkeys(("maybe", "perhaps", "possibly", "probably", "might"), "maybe"),
    **dict.fromkeys(("no", "not", "never", "nothing", "nobody", "none", "nope", "neither", "nor", "cannot",
                     "nowhere"), "no"),
    **dict.fromkeys(("yes", "sure", "absolutely", "yeah", "definitely", "exactly", "right", "indeed",
                     "certainly", "agree", "correct"), "yes"),
}
# Engine v1's word list (written forms; a subset of what LEMMA_TO_GESTURE and gesture_for_word cover).
WORD_TO_GESTURE: dict[str, str] = {
    **dict.fromkeys(("i", "me", "my", "myself", "mine", "i'm", "i've", "i'll", "i'd"), "self"),
    **dict.fromkeys(("you", "your", "yours", "yourself", "you're", "you've", "you'll"), "you"),
    **dict.fromkeys(("this", "here", "these"), "here"),
    **dict.fromkeys(("there", "that", "those"), "there"),
    **dict.fromkeys(("big", "huge", "large", "enormous", "massive"), "big"),
    **dict.fromkeys(("everything", "all", "whole"), "all"),
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

_EN_FUNCTION_WORDS = frozenset("""
the a an and or but of to in on at for with from by about as into than then so if because while is are was
were be been being am do does did done have has had will would can could should shall may might must i you
he she it we they me him her us them my your his its our their this that these those there here what which
who whom whose when where why how not no yes just very too also only all some any each every much many more
most other such own same again once ok okay oh hello hi let let's
""".split())


def _normalise_word(text: str) -> str:
    t = text.lower().replace("\u2019", "'")
    return re.sub(r"[^a-z']", "", t).strip("'")


@lru_cache(maxsize=65536)
def gesture_for_word(text: str) -> tuple[str, str] | None:
    """(gesture kind, lemma) an English word triggers, or None. Negated contractions ("don't") trigger
    negation; other contractions use their first part ("I'm" -> I); words lemminflect does not know are
    looked up as written (lower case)."""
    w = _normalise_word(text)
    if not w:
        return None
    if w.endswith("n't"):
        return "no", "not"
    base = w.split("'")[0]
    for form in lemma_forms(base):
        kind = LEMMA_TO_GESTURE.get(form)
        if kind is not None:
            return kind, form
    return None


def is_english(words: Sequence) -> bool:
    """True when most words of a transcript are English (function words or words lemminflect knows)."""
    toks = [t for t in (_normalise_word(str(getattr(w, "text", w))) for w in words) if t]
    if not toks:
        return False
    known = sum(1 for t in toks if t.split("'")[0] in _EN_FUNCTION_WORDS or english_word_known(t.split("'")[0]))
    return known >= 0.6 * len(toks)


# ----------------------------------------------------------------------------------------------------
# Small numeric helpers


def _minjerk(u: np.ndarray) -> np.ndarray:
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


def _ease(u: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk easing of u**p: p > 1 starts slowly and stops sharply (a powerful stroke). A negative
    p is the mirror image (starts sharply, stops slowly: a rebound)."""
    u = np.clip(u, 0.0, 1.0)
    p = np.asarray(p, dtype=np.float64)
    a = np.abs(p)
    return np.where(p < 0, 1.0 - _minjerk((1.0 - u) ** a), _minjerk(u**a))


@lru_cache(maxsize=4096)
def _ease_peak(p: float) -> float:
    p = abs(p)
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


def _running_median(x: np.ndarray, width: int, stride: int = 4) -> np.ndarray:
    """Median of x over a centred window of ``width`` samples (evaluated every ``stride``, interpolated)."""
    n = len(x)
    if n == 0:
        return x.copy()
    h = width // 2
    pad = np.concatenate([np.full(h, x[0]), x, np.full(h, x[-1])])
    at = np.arange(0, n, stride)
    if at[-1] != n - 1:
        at = np.append(at, n - 1)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1)[at]
    return np.interp(np.arange(n), at, np.median(win, axis=1))


def _dilate_mask(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for k in range(1, r + 1):
        out[k:] |= mask[:-k]
        out[:-k] |= mask[k:]
    return out


def prominence_curve(energy: np.ndarray, onset: np.ndarray, pitch_hz: np.ndarray, voiced: np.ndarray,
                     fps: float = FPS) -> np.ndarray:
    """Per-frame prosodic prominence (about 0..1): onset strength, energy and the pitch excursion above
    the speaker's running median (semitones over +-1.5 s of voiced speech; 4 semitones = 1), gated to
    voiced frames (widened by 2 frames: a syllable's onset precedes its voicing)."""
    voiced = np.asarray(voiced, dtype=bool)
    n = len(voiced)
    exc = np.zeros(n)
    f0 = np.nan_to_num(np.asarray(pitch_hz, dtype=np.float64))
    has_f0 = (f0 > 0) & voiced
    if np.count_nonzero(has_f0) >= 5:
        st = 12.0 * np.log2(f0[has_f0] / 100.0)
        med = _running_median(st, int(3.0 * fps) | 1)
        exc[has_f0] = np.clip((st - med) / 4.0, 0.0, 1.0)
    prom = 0.45 * np.asarray(onset, dtype=np.float64) + 0.30 * np.asarray(energy, dtype=np.float64) + 0.25 * exc
    return _gauss_smooth(prom, 1.0) * _dilate_mask(voiced, 2)


def detect_accents(prominence: np.ndarray, voiced: np.ndarray, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Pitch accents / stressed syllables: frame indices and strengths (0..1) of the prominence curve's
    clear peaks (a drop of at least 0.04 within 0.25 s on both sides) in voiced frames, at least 0.15 s
    apart. Strength is relative to the clip's strong peaks (the 90th percentile of peak heights = 0.9)."""
    env = np.asarray(prominence, dtype=np.float64)
    n = len(env)
    voiced = np.asarray(voiced, dtype=bool)
    if n < 3 or not np.any(voiced):
        return np.zeros(0, dtype=int), np.zeros(0)
    is_max = np.zeros(n, dtype=bool)
    is_max[1:-1] = (env[1:-1] >= env[:-2]) & (env[1:-1] > env[2:])
    idx = np.flatnonzero(is_max & _dilate_mask(voiced, 2) & (env > 1e-4))
    if len(idx) == 0:
        return idx, np.zeros(0)
    w = max(2, int(round(0.25 * fps)))
    pad = np.concatenate([np.full(w, np.inf), env, np.full(w, np.inf)])
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)[idx]
    drop = env[idx] - np.maximum(win[:, :w].min(axis=1), win[:, w + 1:].min(axis=1))
    idx = idx[drop > 0.04]
    if len(idx) == 0:
        return idx, np.zeros(0)
    ref = float(np.percentile(env[idx], 90))
    strength = np.clip(0.9 * env[idx] / max(ref, 1e-6), 0.0, 1.0)
    keep: list[int] = []
    gap = 0.15 * fps
    for k in np.argsort(-strength, kind="stable"):
        if all(abs(idx[k] - idx[j]) >= gap for j in keep):
            keep.append(int(k))
    keep.sort()
    return idx[keep], strength[keep]


def _snap_to_onsets(idx: np.ndarray, onset: np.ndarray, back: int = 5, ahead: int = 1) -> np.ndarray:
    """Move each accent (a prominence peak: the stressed syllable's nucleus) to the onset-strength peak
    that starts its syllable, up to ``back`` frames earlier: the stroke apex lands on, or just before, the
    stressed syllable."""
    n = len(onset)
    if len(idx) == 0 or n == 0:
        return idx
    pad = np.concatenate([np.full(back, -np.inf), np.asarray(onset, dtype=np.float64), np.full(ahead, -np.inf)])
    win = np.lib.stride_tricks.sliding_window_view(pad, back + ahead + 1)[idx]
    out = idx - back + np.argmax(win, axis=1)
    return np.maximum.accumulate(np.clip(out, 0, n - 1))


def detect_beats(envelope: np.ndarray, voiced: np.ndarray, activation: float = 0.5,
                 fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Beat frames and strengths: the accents of ``envelope`` a speaker with gesture rate ``activation``
    (0..1) marks with a stroke: strong enough (threshold falls with the rate) and at least the rate's
    spacing apart (0.45 s at rate 1 to about 2.6 s at rate 0), strongest first."""
    idx, strength = detect_accents(envelope, voiced, fps)
    times = _select_beats(idx / fps, strength, activation, [])
    keep = np.isin(np.round(idx / fps, 6), np.round(times, 6))
    return idx[keep], strength[keep]


def beat_spacing(rate: float) -> float:
    """Minimum time between two beat strokes of one speaker for a gesture rate 0..1 (seconds)."""
    return 0.45 + 2.2 * (1.0 - rate) ** 1.5


def _select_beats(times: np.ndarray, strength: np.ndarray, rate: float, blocked: list[float],
                  min_t: float = 0.0) -> np.ndarray:
    thr = 0.12 + 0.33 * (1.0 - rate)
    spacing = beat_spacing(rate)
    chosen: list[float] = []
    for k in np.argsort(-strength, kind="stable"):
        t = float(times[k])
        if strength[k] < thr or t < min_t:
            continue
        if any(-0.6 < t - b < 0.35 for b in blocked):
            continue
        if all(abs(t - c) >= spacing for c in chosen):
            chosen.append(t)
    return np.array(sorted(chosen))


# ----------------------------------------------------------------------------------------------------
# Planning


@dataclass
class _Pose:
    pos: np.ndarray
    pole: np.ndarray
    twist: float
    aim: np.ndarray  # NaN = no aim
    fingers: np.ndarray  # 6 shape params + 1 "beat" weight (the hand layer picks the beat hand shape)
    active: float
    flex: float = 0.0  # wrist flexion (radians, + = towards the palm), on top of the IK's hand aim


@dataclass
class _Key:
    t: float
    pose: _Pose
    ease: float = 1.0  # exponent of the segment that ends at this key


@dataclass
class _Lex:
    t: float  # stroke apex (the word's accent)
    start: float
    word: str
    lemma: str
    kind: str


@dataclass
class _Event:
    t: float
    kind: str  # "beat" or a LEXICAL key
    hands: str  # "L", "R" or "B"
    strength: float
    poses: dict  # arm -> (prep, apex, hold) poses
    word: str | None = None
    lemma: str | None = None


@dataclass
class _Phases:
    prep: tuple[float, float]
    stroke: tuple[float, float]
    hold: tuple[float, float]
    retract: tuple[float, float] | None = None


@dataclass
class _Prosody:
    acc_t: np.ndarray  # accent times (s)
    acc_s: np.ndarray  # accent strengths
    phrases: list[tuple[float, float]]  # voiced phrases (start, end)
    long_before: list[bool]  # per phrase: preceded by a long pause (or the clip start)
    long_pauses: list[tuple[float, float]]  # pauses of LONG_PAUSE or more, and the silence after the end
    hand_u: np.ndarray  # (phrases, 2) uniforms for the hand choice (style-independent)


_NAN3 = np.full(3, np.nan)


def _fingers7(shape: ArrayLike, beat: float = 0.0) -> np.ndarray:
    return np.append(np.asarray(shape, dtype=np.float64), beat)


def _pose(
    pos: ArrayLike, pole: ArrayLike, twist: float, aim: ArrayLike | None, fingers: ArrayLike, active: float,
    flex: float = 0.0,
) -> _Pose:
    f = np.asarray(fingers, dtype=np.float64)
    return _Pose(np.asarray(pos, dtype=np.float64), np.asarray(pole, dtype=np.float64), float(twist),
                 _NAN3.copy() if aim is None else np.asarray(aim, dtype=np.float64),
                 f if f.shape[0] == 7 else _fingers7(f), float(active), float(flex))


def _rest_pose(style: StyleParams) -> _Pose:
    pos, pole, twist, aim, fingers = _REST_SHAPES[style.rest_pose]
    return _pose(np.array(pos) + _SHOULDER_REST, pole, twist, aim, fingers, 0.0, 0.1 if aim is None else 0.0)


def _reach(style: StyleParams, strength: float) -> float:
    return (0.55 + 0.9 * style.spatial_extent) * (0.75 + 0.35 * strength)


def _beat_poses(style: StyleParams, rng: np.random.Generator, strength: float,
                prev_apex: np.ndarray | None) -> tuple[_Pose, _Pose, _Pose]:
    s = style.spatial_extent
    centre = np.array([-0.05 + 0.08 * (s - 0.5), -0.28 + 0.08 * (s - 0.5), 0.27 + 0.12 * (s - 0.5)])
    spread = np.array([0.07, 0.05, 0.04]) * (0.6 + 0.8 * s)
    if prev_apex is not None and rng.random() < style.repetition:
        d = rng.normal(0.0, 1.0, 3)
        offset = prev_apex - _SHOULDER_REST + d / np.linalg.norm(d) * rng.uniform(0.03, 0.045)  # a repeat, varied
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
    fingers = _fingers7(OPEN, 1.0)
    apex_pos = offset + _SHOULDER_REST
    cock = (0.15 + 0.35 * style.power) * (0.6 + 0.6 * strength)  # the wrist flicks with the stroke
    prep = _pose(apex_pos + direction * flick, pole, twist + 0.1, None, fingers, 1.0, -0.6 * cock)
    apex = _pose(apex_pos, pole, twist, None, fingers, 1.0, 0.4 * cock)
    # A beat is a flick: the hand rebounds part of the way back up after the apex, then holds there.
    hold = _pose(apex_pos + direction * flick * 0.45, pole, twist + 0.05, None,
                 _fingers7(OPEN * 0.7 + RELAXED * 0.3, 0.7), 0.9, 0.1 * cock)
    return prep, apex, hold


def _lexical_poses(kind: str, style: StyleParams, rng: np.random.Generator, strength: float,
                   prev_apex: np.ndarray | None) -> tuple[_Pose, _Pose, _Pose]:
    shape = LEXICAL[kind]
    reach = _reach(style, strength)
    apex_off = np.array(shape.apex)
    if kind in ("big", "there", "maybe", "no", "all", "point", "question"):  # extent grows with spatial extent
        apex_off = apex_off + np.array([0.08, 0.02, 0.04]) * (reach - 1.0)
    apex_off = apex_off + rng.normal(0.0, 0.012, 3)
    apex_pos = apex_off + _SHOULDER_REST
    if prev_apex is not None and np.linalg.norm(apex_pos - prev_apex) < 0.03:  # never the same twice in a row
        d = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), 0.0])
        apex_pos = prev_apex + d / max(float(np.linalg.norm(d)), 1e-6) * 0.035
    prep_pos = apex_pos + np.array(shape.prep) * min(1.3, reach) * rng.uniform(0.8, 1.2)
    pole = np.array(shape.pole) + rng.normal(0.0, 0.08, 3)
    aim = None if shape.aim is None else np.array(shape.aim)
    fingers = np.array(shape.fingers)
    prep = _pose(prep_pos, pole, shape.twist, aim, fingers, 1.0)
    apex = _pose(apex_pos, pole, shape.twist, aim, fingers, 1.0)
    hold = _pose(apex_pos + np.array([0.0, -0.015, -0.01]), pole, shape.twist, aim, fingers, 1.0)
    return prep, apex, hold


def _lexical_items(words: Sequence | None, acc_t: np.ndarray, acc_s: np.ndarray, duration: float,
                   language: str | None) -> list[_Lex]:
    """Lexicon hits with their stroke apex on the word's strongest accent (else the word start)."""
    words = list(words or ())
    if not words:
        return []
    if language is not None:
        english = language.lower().replace("_", "-").split("-")[0] in ("en", "eng", "english")
    else:
        english = is_english(words)
    if not english:
        return []
    out: list[_Lex] = []
    for w in words:
        text = str(getattr(w, "text", ""))
        start = float(getattr(w, "start", -1.0))
        end = float(getattr(w, "end", start + 0.3))
        hit = gesture_for_word(text)
        if hit is None or not (0.0 <= start < duration):
            continue
        lo, hi = start - 0.06, min(max(end, start + 0.15), start + 0.5)
        inside = np.flatnonzero((acc_t >= lo) & (acc_t <= hi) & (acc_s > 0.2))
        t = float(acc_t[inside[np.argmax(acc_s[inside])]]) if len(inside) else start + 0.05
        out.append(_Lex(t, start, text, hit[1], hit[0]))
    return out


def _analyse(feats: dict, duration: float, seed: int) -> _Prosody:
    voiced = feats["voiced"]
    prom = prominence_curve(feats["energy"], feats["onset"], feats["pitch"], voiced)
    idx, strength = detect_accents(prom, voiced)
    idx = _snap_to_onsets(idx, feats["onset"])
    runs = [(a / FPS, b / FPS) for a, b in _speech_runs(voiced)]
    # Phrases: voiced runs joined across gaps shorter than PHRASE_PAUSE.
    phrases: list[tuple[float, float]] = []
    long_before: list[bool] = []
    long_pauses: list[tuple[float, float]] = []
    prev_end = 0.0
    for a, b in runs:
        gap = a - prev_end
        if phrases and gap < PHRASE_PAUSE:
            phrases[-1] = (phrases[-1][0], b)
        else:
            phrases.append((a, b))
            long_before.append(not long_before or gap >= LONG_PAUSE)
        if gap >= LONG_PAUSE:
            long_pauses.append((prev_end, a))
        prev_end = b
    long_pauses.append((prev_end, max(prev_end, duration) + 10.0))
    hand_u = np.random.default_rng([seed, 13]).random((max(1, len(phrases)), 2))
    return _Prosody(idx / FPS, strength, phrases, long_before, long_pauses, hand_u)


def _plan(style: StyleParams, pro: _Prosody, lex: list[_Lex], seed: int) -> list[_Event]:
    """Gesture events of one style: lexical gestures and beats, hands, keyposes."""
    rate = style.gesture_rate
    rng_sel = np.random.default_rng([seed, 11])
    rng_pose = np.random.default_rng([seed, 12])
    u_lex = rng_sel.random(len(lex))
    u_two = rng_sel.random(len(pro.acc_t))
    p_lex = 0.4 + 0.6 * min(1.0, 1.6 * rate)
    lex_gap = max(0.45, 0.45 * beat_spacing(rate))
    chosen_lex: list[_Lex] = []
    for lx, u in zip(lex, u_lex.tolist(), strict=True):
        if (u >= p_lex or lx.t < 0.3) and LEXICAL[lx.kind].arm:  # too early to prepare from rest
            continue
        if chosen_lex and lx.t - chosen_lex[-1].t < lex_gap:
            continue
        chosen_lex.append(lx)
    blocked = [lx.t for lx in chosen_lex if LEXICAL[lx.kind].arm]
    beat_t = _select_beats(pro.acc_t, pro.acc_s, rate, blocked, min_t=0.25)
    strength_of = dict(zip(np.round(pro.acc_t, 6).tolist(), pro.acc_s.tolist(), strict=True))
    two_of = dict(zip(np.round(pro.acc_t, 6).tolist(), u_two.tolist(), strict=True))
    items: list[tuple[float, str, float, _Lex | None]] = [(lx.t, lx.kind, 0.8, lx) for lx in chosen_lex]
    items += [(float(t), "beat", strength_of[round(float(t), 6)], None) for t in beat_t]
    items.sort(key=lambda e: e[0])

    # Hands: one per phrase; within a gesture unit the hand usually stays, after a long pause it is drawn
    # afresh (dominant hand by handedness).
    p_right = 0.5 + 0.45 * style.handedness
    hand_of: list[str] = []
    for k in range(len(pro.phrases)):
        u_draw, u_keep = pro.hand_u[k]
        fresh = "R" if u_draw < p_right else "L"
        hand_of.append(fresh if k == 0 or pro.long_before[k] or u_keep >= 0.7 else hand_of[-1])
    starts = [p[0] for p in pro.phrases]

    out: list[_Event] = []
    prev_apex: dict[str, np.ndarray | None] = {"L": None, "R": None}
    prev_kind: dict[str, str | None] = {"L": None, "R": None}
    for t, kind, strength, src in items:
        ph = max(0, int(np.searchsorted(starts, t + 0.25, side="right")) - 1)
        hand = hand_of[ph] if hand_of else ("R" if p_right >= 0.5 else "L")
        shape = LEXICAL.get(kind)
        if shape is None:
            two = strength > 0.75 and two_of[round(t, 6)] < 0.05 + 0.3 * style.spatial_extent * style.activation
        else:
            two = shape.two_hands
        hands = "B" if two else hand
        poses = {}
        for arm in ("L", "R"):
            if hands not in (arm, "B"):
                continue
            if kind == "beat":
                poses[arm] = _beat_poses(style, rng_pose, strength, prev_apex[arm] if prev_kind[arm] == kind
                                         else None)
            elif shape is not None and shape.arm:
                poses[arm] = _lexical_poses(kind, style, rng_pose, strength,
                                            prev_apex[arm] if prev_kind[arm] == kind else None)
            else:
                continue
            prev_apex[arm], prev_kind[arm] = poses[arm][1].pos, kind
        if shape is not None and not shape.arm:
            hands = ""
        out.append(_Event(t, kind, hands, strength, poses, src.word if src else None, src.lemma if src else None))
    return out


def _hold_beats(keys: list[_Key], t_to: float, acc_t: np.ndarray, acc_s: np.ndarray, strokes: np.ndarray,
                style: StyleParams, ease: float) -> None:
    """Small beats superimposed on a hold: the held hand dips onto accents between the last key and
    ``t_to`` (the next movement). Their size follows the style (almost nothing for a listless one)."""
    hold = keys[-1].pose
    t_from = keys[-1].t
    half = 0.12 + 0.08 * style.temporal_extent
    thr = 0.55 - 0.35 * style.activation
    amp0 = (0.012 + 0.035 * style.spatial_extent) * (0.4 + 0.6 * style.activation)
    lo, hi = np.searchsorted(acc_t, [t_from + half + 0.08, t_to - half - 0.05])
    last = t_from
    for ta, sa in zip(acc_t[lo:hi].tolist(), acc_s[lo:hi].tolist(), strict=True):
        if sa < thr or ta - half < last + 0.03 or (len(strokes) and np.min(np.abs(strokes - ta)) < 0.3):
            continue
        amp = amp0 * (0.5 + 0.5 * sa)
        dip = replace(hold, pos=hold.pos + np.array([0.0, -amp, 0.3 * amp]))
        keys.append(_Key(ta - half, hold))
        keys.append(_Key(ta, dip, ease))
        keys.append(_Key(ta + half, hold, -ease))
        last = ta + half


def _arm_keys(events: list[_Event], arm: str, style: StyleParams, pro: _Prosody,
              rest: _Pose) -> tuple[list[_Key], dict[int, _Phases]]:
    """Keyposes of one arm and, per realised event (index into ``events``), its Kendon phase times."""
    long_pauses = pro.long_pauses
    te, pw = style.temporal_extent, style.power
    stroke_dur = 0.12 + 0.2 * te
    prep_dur = 0.2 + 0.2 * te
    hold_dur = 0.08 + 0.17 * te + 0.1 * pw
    retract_dur = 0.5 + 0.4 * te
    idle_limit = 1.8 + 0.8 * te
    stroke_p = 1.0 + 0.9 * pw
    overshoot = 0.15 * max(0.0, pw - 0.3)
    settle = 0.8 * (0.8 + 2.2 * style.fluidity) / FPS  # the arm's low-pass moves a stop this much later
    if overshoot > 0:
        settle += 0.05  # and the recoil from the overshoot back to the apex takes 0.1 s
    v_avg = (2.3 - 1.1 * te) / (1.3 * _ease_peak(1.0))  # m/s, average over a min-jerk segment (slower if te)
    evs = [(i, e) for i, e in enumerate(events) if arm in e.poses]
    strokes = np.array([e.t for _, e in evs])
    via = None
    if style.rest_pose == "behind":
        side = _rest_pose(replace(style, rest_pose="sides"))
        via = replace(side, pos=side.pos + np.array([0.04, 0.04, -0.03]), active=0.3)
    keys = [_Key(0.0, rest)]
    phases: dict[int, _Phases] = {}
    at_rest = True
    prev_i: int | None = None
    for j, (i, ev) in enumerate(evs):
        prep, apex, hold = ev.poses[arm]
        last_t = keys[-1].t
        t_a = ev.t if ev.kind == "beat" else ev.t - settle  # a stroke into a still hold settles after its key
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
        t0 = max(t0, last_t + 0.03)
        if not at_rest:
            _hold_beats(keys, t0, pro.acc_t, pro.acc_s, strokes, style, stroke_p)
        if t0 > keys[-1].t + 0.03:
            keys.append(_Key(t0, start_pose))
        if prev_i is not None and phases[prev_i].retract is None:  # the previous hold lasts until now
            phases[prev_i].hold = (phases[prev_i].hold[0], t0)
        if at_rest and via is not None:
            t_via = keys[-1].t + 0.45 * ((t_prep if t_prep is not None else t_a) - keys[-1].t)
            keys.append(_Key(t_via, via))
        if t_prep is not None:
            keys.append(_Key(t_prep, prep))
        stroke_start = t_prep if t_prep is not None else t0
        if ev.kind == "beat":  # a flick: down onto the accent and straight back up, mirror-symmetric
            keys.append(_Key(t_a, apex, stroke_p))
            t_h = t_a + max(0.16, 0.6 * stroke_dur)
            keys.append(_Key(t_h, hold, -stroke_p))
        elif overshoot > 0 and t_prep is not None:
            over = replace(apex, pos=apex.pos + (apex.pos - prep.pos) * overshoot)
            keys.append(_Key(t_a, over, stroke_p))
            keys.append(_Key(t_a + 0.1, apex))
            t_h = t_a + 0.1 + hold_dur
            keys.append(_Key(t_h, hold))
        else:
            keys.append(_Key(t_a, apex, stroke_p))
            t_h = t_a + hold_dur
            keys.append(_Key(t_h, hold))
        phases[i] = _Phases((t0, stroke_start), (stroke_start, ev.t), (ev.t, t_h))
        prev_i = i
        # Retract in long pauses (or when this hand has nothing more to do soon); hold otherwise.
        nxt = evs[j + 1][1] if j + 1 < len(evs) else None
        pause = next((p for p in long_pauses if p[0] >= t_a - 0.05), None)
        pause_before_next = pause is not None and (nxt is None or pause[0] < nxt.t)
        if nxt is None or pause_before_next or nxt.t - t_a > idle_limit:
            t_r0 = t_h + 0.2
            if pause_before_next and pause is not None and pause[0] < t_h + 1.2:
                t_r0 = max(t_h + 0.05, pause[0] + 0.1)
            dur_r = max(retract_dur, float(np.linalg.norm(hold.pos - rest.pos)) / (0.8 * v_avg))
            if nxt is None or t_r0 + dur_r + prep_dur + stroke_dur + 0.2 < nxt.t:
                _hold_beats(keys, t_r0, pro.acc_t, pro.acc_s, strokes, style, stroke_p)
                keys.append(_Key(t_r0, replace(hold, active=0.8)))
                if via is not None:
                    keys.append(_Key(t_r0 + 0.55 * dur_r, via))
                    dur_r += 0.25
                keys.append(_Key(t_r0 + dur_r, rest))
                phases[i].hold = (t_a, t_r0)
                phases[i].retract = (t_r0, t_r0 + dur_r)
                at_rest = True
                continue
        at_rest = False
    return _limit_speed(keys, v_avg), phases


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
    """Arm rotations (T, 3, 4) (wrist flexion included), finger params (T, 7) and activity (T,) from keys."""
    times = np.array([k.t for k in keys])
    pos = np.stack([k.pose.pos for k in keys])
    pole = np.stack([k.pose.pole for k in keys])
    twist = np.array([k.pose.twist for k in keys])
    aim = np.stack([k.pose.aim for k in keys])
    fingers = np.stack([k.pose.fingers for k in keys])
    active = np.array([k.pose.active for k in keys])
    ease = np.array([k.ease for k in keys])
    flex = np.array([k.pose.flex for k in keys])
    q = _left_arm_ik(pos, pole, twist, aim, collar_q)  # (K, 3, 4)
    q[:, 2] = quat_mul(q[:, 2], _rot(np.broadcast_to([0.0, 0.0, 1.0], (len(keys), 3)), -flex))
    if len(keys) == 1:
        n = len(t)
        return np.repeat(q, n, 0), np.repeat(fingers, n, 0), np.repeat(active, n, 0)
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2)
    u = np.clip((t - times[seg]) / (times[seg + 1] - times[seg]), 0.0, 1.0)
    s = _ease(u, ease[seg + 1])
    rot = quat_slerp(q[seg], q[seg + 1], np.repeat(s[:, None], 3, 1))
    fing = fingers[seg] + (fingers[seg + 1] - fingers[seg]) * s[:, None]
    act = active[seg] + (active[seg + 1] - active[seg]) * s
    return rot, fing, act


@lru_cache(maxsize=512)
def _follow_kernel(freq_hz: float, zeta: float, fps: float = FPS, taps: int = 36) -> np.ndarray:
    """Impulse response (unit DC gain) of a second-order system sampled at fps (zero-order hold):
    fingers settle with a little overshoot after the wrist stops (overlap and follow-through)."""
    w = 2.0 * math.pi * freq_hz
    aug = np.zeros((3, 3))
    aug[:2, :2] = np.array([[0.0, 1.0], [-w * w, -2.0 * zeta * w]]) / fps
    aug[:2, 2] = np.array([0.0, w * w]) / fps
    # expm by scaling and squaring with a Taylor series
    k = max(0, int(math.ceil(math.log2(max(np.abs(aug).sum(axis=1).max(), 1e-9)))) + 1)
    a = aug / 2.0**k
    e, term = np.eye(3), np.eye(3)
    for i in range(1, 14):
        term = term @ a / i
        e = e + term
    for _ in range(k):
        e = e @ e
    ad, bd = e[:2, :2], e[:2, 2]
    h = np.zeros(taps)
    s = bd.copy()
    for i in range(1, taps):
        h[i] = s[0]
        s = ad @ s
    return h / h.sum()


def _apply_kernel(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Causal filter of x (T, C) with kernel h, the signal held at its first value before the start."""
    n, m = x.shape[0], len(h)
    pad = np.concatenate([np.repeat(x[:1], m, 0), x], 0)
    out = np.zeros_like(x, dtype=np.float64)
    for j in range(m):
        if h[j] != 0.0:
            out += h[j] * pad[m - j:m - j + n]
    return out


def beat_hand_shape(hand: StyleParams) -> np.ndarray:
    """The hand shape a style beats with: a fist when forceful, a precision pinch when small and fluid,
    a relaxed half-open hand when weak, an open palm otherwise."""
    if hand.power > 0.7:
        return OPEN + (FIST - OPEN) * min(1.0, (hand.power - 0.7) / 0.3) * 0.85
    if hand.spatial_extent < 0.45 and hand.fluidity > 0.6:
        return OPEN + (PINCH - OPEN) * 0.65
    if hand.power < 0.25:
        return OPEN + (RELAXED - OPEN) * (0.25 - hand.power) / 0.25 * 0.7
    return OPEN.copy()


def _hand_layer(fing: np.ndarray, hand: StyleParams, noise: np.ndarray) -> np.ndarray:
    """Finger shape params (T, 6) of one hand: the arm's gesture shapes with this hand style's beat
    shape, tension, spread, fidgeting and follow-through."""
    shape = fing[:, :6] + fing[:, 6:7] * (beat_hand_shape(hand) - OPEN)
    tension = 0.3 * (hand.power - 0.5)
    target = FIST if tension > 0 else RELAXED
    shape[:, :5] += abs(tension) * (target[:5] - shape[:, :5])
    shape[:, 5] *= 0.6 + 0.8 * hand.spatial_extent
    shape[:, :5] += (0.02 + 0.12 * hand.repetition * hand.activation) * noise
    h = _follow_kernel(round(2.5 + 3.0 * (1.0 - hand.temporal_extent), 3), round(0.8 - 0.4 * hand.fluidity, 3))
    return np.clip(_apply_kernel(shape, h), 0.0, 1.0)


def _bump(out: np.ndarray, t: np.ndarray, centre: float, amp: float, width: float, shift: float = 0.0) -> None:
    """out += amp * Gaussian(t - centre - shift, width), on the frames where it matters."""
    lo = max(0, int((centre + shift - 4 * width) * FPS))
    hi = min(len(t), int((centre + shift + 4 * width) * FPS) + 2)
    if hi > lo:
        out[lo:hi] += amp * np.exp(-0.5 * ((t[lo:hi] - centre - shift) / width) ** 2)


def _head_layers(pro: _Prosody, lex: list[_Lex], t: np.ndarray, head: StyleParams,
                 rng: np.random.Generator, act_l: np.ndarray, act_r: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """Head pitch (+ = down), yaw, roll per frame relative to the world (the caller removes the trunk's
    own lean and twist), a shrug pulse for the collars, and the head events."""
    n = len(t)
    pitch = np.full(n, -head.head_tilt)
    drift = _sines(rng, t, 3, 0.04, 0.15)
    idle = 0.5 + head.activation
    pitch += 0.025 * idle * drift[:, 0]
    yaw = 0.05 * idle * drift[:, 1] + (0.015 + 0.04 * head.activation) * (act_l - act_r)  # glance at the hand
    roll = 0.02 * idle * drift[:, 2]
    shrug = np.zeros(n)
    amp = 0.6 + 0.8 * head.spatial_extent
    width = 0.1 * (0.7 + 0.6 * head.temporal_extent)
    events: list[tuple[float, str]] = []
    busy = [lx.t for lx in lex if LEXICAL[lx.kind].head is not None]
    # Nods on accents: the stronger ones, at most one per spacing.
    thr = 0.85 - 0.5 * head.activation
    gap = 0.4 + 1.4 * (1.0 - head.activation)
    last = -1e9
    for ta, sa in zip(pro.acc_t.tolist(), pro.acc_s.tolist(), strict=True):
        if sa < thr or ta - last < gap or any(-0.3 < ta - b < 0.9 for b in busy):
            continue
        _bump(pitch, t, ta, 0.07 * amp * sa, width, -0.02)
        events.append((ta, "nod"))
        last = ta
    for lx in lex:
        dt = t - lx.start
        kind = LEXICAL[lx.kind].head
        if kind == "shake":
            lo, hi = max(0, int((lx.start - 0.1) * FPS)), min(n, int((lx.start + 0.8) * FPS) + 1)
            d = dt[lo:hi] + 0.1
            yaw[lo:hi] += 0.16 * amp * np.sin(np.pi * np.clip(d / 0.9, 0, 1)) * np.sin(2.0 * np.pi * 2.4 * d)
            events.append((lx.start, "shake"))
        elif kind == "nod":
            lo, hi = max(0, int((lx.start - 0.05) * FPS)), min(n, int((lx.start + 0.85) * FPS) + 1)
            pitch[lo:hi] += 0.14 * amp * 0.5 * (1 - np.cos(2.0 * np.pi * 2.2 * (dt[lo:hi] + 0.05)))
            events.append((lx.start, "nod"))
        elif kind == "tilt":
            _bump(roll, t, lx.t, 0.1, 0.22, 0.05)
            _bump(shrug, t, lx.t, 1.0, 0.22, 0.05)
            events.append((lx.t, "tilt"))
        elif LEXICAL[lx.kind].type == "deictic":
            _bump(pitch, t, lx.t, 0.04 * amp, 0.12)
    return pitch, yaw, roll, shrug, sorted(events)


def _shift_curve(boundaries: list[float], t: np.ndarray, rng: np.random.Generator, channels: int) -> np.ndarray:
    """(T, channels) piecewise-constant random offsets in -1..1 that change smoothly at the boundaries."""
    values = rng.uniform(-1.0, 1.0, (len(boundaries) + 1, channels))
    raw = values[np.searchsorted(np.asarray(boundaries, dtype=np.float64), t)]
    return _gauss_smooth(raw, 0.35 * FPS) if len(boundaries) else raw


def _part_joints(part: str) -> np.ndarray:
    return np.array([J[name] for name in BODY_PARTS[part]])


def generate_rule_based(
    features: AudioFeatures, words: Sequence | None, style: StyleParams | PartStyles, seed: int = 0,
    *, language: str | None = None,
) -> CanonicalMotion:
    """Co-speech gesture for the given audio features (and optional word timings), at 30 fps.

    features: AudioFeatures-like (fps, energy, onset, pitch_hz, voiced); words: objects with text, start,
    end (seconds) or None; style: one StyleParams, or a PartStyles with a style per body part. language:
    the transcript's language ("en", "de", ...); None detects English from the words. Only English
    transcripts trigger lexical gestures. Deterministic for a seed.

    ``motion.meta["events"]``: one dict per realised arm gesture, in time order: t (stroke apex, s), kind
    (lexicon entry or "beat"), type (beat, deictic, iconic, metaphoric), hands ("L", "R", "B"), strength,
    word and lemma (lexical gestures), and the Kendon phases prep, stroke, hold, retract as [start, end]
    seconds (retract None when the hand holds into the next gesture). ``meta["head_events"]``: (t, nod /
    shake / tilt).
    """
    parts = PartStyles.coerce(style)
    ps = {p: parts.part(p).clamped() for p in BODY_PARTS}
    src_fps = float(features.fps)
    n_src = len(np.asarray(features.energy))
    duration = n_src / src_fps if src_fps > 0 else 0.0
    n = max(1, int(round(duration * FPS)))
    t = np.arange(n) / FPS
    pitch_src = getattr(features, "pitch_hz", None)
    feats = {
        "energy": np.nan_to_num(np.clip(_resample(features.energy, src_fps, n), 0.0, None)),
        "onset": np.nan_to_num(np.clip(_resample(features.onset, src_fps, n), 0.0, None)),
        "voiced": _resample(np.asarray(features.voiced, dtype=np.float64), src_fps, n) > 0.5,
        "pitch": np.zeros(n) if pitch_src is None else _resample(np.nan_to_num(pitch_src), src_fps, n),
    }
    pro = _analyse(feats, duration, seed)
    lex = _lexical_items(words, pro.acc_t, pro.acc_s, duration, language)
    plans: dict[StyleParams, list[_Event]] = {}
    for part in ("left_arm", "right_arm"):
        if ps[part] not in plans:
            plans[ps[part]] = _plan(ps[part], pro, lex, seed)

    # Posture: collars (shoulder raise, torso style) are static for the IK; breathing and shrugs on top.
    torso, head, lower = ps["torso"], ps["head"], ps["lower_body"]
    collar_l = _rot([0.0, 0.0, 1.0], 0.22 * torso.shoulder_raise)
    arms = {}
    realised: dict[str, dict[int, _Phases]] = {}
    for arm, part in (("L", "left_arm"), ("R", "right_arm")):
        keys, realised[arm] = _arm_keys(plans[ps[part]], arm, ps[part], pro, _rest_pose(ps[part]))
        arms[arm] = _interp_keys(keys, t, collar_l)
    act_l, act_r = _gauss_smooth(arms["L"][2], 4.0), _gauss_smooth(arms["R"][2], 4.0)
    activity = np.maximum(act_l, act_r)

    rot = np.zeros((n, NUM_JOINTS, 4))
    rot[..., 0] = 1.0
    root = np.tile([0.0, REST_PELVIS_HEIGHT, 0.0], (n, 1))

    # Arms and hands (right = mirror of the left-arm solution).
    micro = _sines(np.random.default_rng([seed, 21]), t, 24, 0.15, 0.7)
    fidget = _sines(np.random.default_rng([seed, 22]), t, 10, 0.4, 1.8)
    for arm, side, fidx in (("L", "left", _LEFT_FINGER_IDX), ("R", "right", _RIGHT_FINGER_IDX)):
        q_arm, fing, _ = arms[arm]
        o = 0 if arm == "L" else 12
        amp = 0.6 + 0.8 * ps[f"{side}_arm"].activation
        noise = np.stack([micro[:, o + 0:o + 3] * 0.008, micro[:, o + 3:o + 6] * 0.01,
                          micro[:, o + 6:o + 9] * 0.02], 1) * amp
        q_arm = quat_mul(q_arm, axis_angle_to_quat(noise))
        f = 0 if arm == "L" else 5
        q_f = _finger_quats(_hand_layer(fing, ps[f"{side}_hand"], fidget[:, f:f + 5]))
        if arm == "R":
            q_arm, q_f = _mirror_quat(q_arm), _mirror_quat(q_f)
        rot[:, J[f"{side}_shoulder"]] = q_arm[:, 0]
        rot[:, J[f"{side}_elbow"]] = q_arm[:, 1]
        rot[:, J[f"{side}_wrist"]] = q_arm[:, 2]
        rot[:, fidx] = q_f

    # Topic boundaries: pauses of a second or more (not the silence after the end).
    bounds = [0.5 * (a + b) for a, b in pro.long_pauses[:-1] if b - a >= 1.0]
    shifts = _shift_curve(bounds, t, np.random.default_rng([seed, 23]), 3)

    # Lower body: sway and weight shifts at topic boundaries.
    rng_low = np.random.default_rng([seed, 24])
    sway = _sines(rng_low, t, 1, 0.04, 0.1)[:, 0] * (1.0 - 0.5 * activity)
    shift_x = (0.008 + 0.01 * lower.activation) * sway + 0.012 * (0.5 + lower.activation) * shifts[:, 2]
    rot[:, J["pelvis"]] = _rot([0.0, 0.0, 1.0], shift_x)
    root[:, 0] += shift_x
    leg_q = _rot([0.0, 0.0, 1.0], -shift_x - shift_x / 0.85)
    rot[:, J["left_hip"]] = leg_q
    rot[:, J["right_hip"]] = leg_q

    # Torso: lean and twist following the active hand, breathing, posture shifts at topic boundaries.
    rng_body = np.random.default_rng([seed, 25])
    body = _sines(rng_body, t, 8, 0.05, 0.6)
    f_breath = 0.2 + 0.1 * torso.activation + rng_body.uniform(-0.02, 0.02)
    breath = np.sin(2.0 * np.pi * f_breath * t + rng_body.uniform(0, 2 * np.pi))
    lean = (torso.torso_lean + 0.035 * activity * (0.5 + torso.spatial_extent)
            + 0.02 * (0.5 + torso.activation) * shifts[:, 0])
    twist = 0.07 * (act_r - act_l) * (0.5 + torso.spatial_extent) + 0.03 * (0.5 + torso.activation) * shifts[:, 1]
    trunk_pitch, trunk_yaw = np.zeros(n), np.zeros(n)
    for j, share in (("spine1", 0.3), ("spine2", 0.35), ("spine3", 0.35)):
        pitch = share * lean - 0.008 * breath * (j != "spine1") + 0.006 * body[:, 0]
        yaw = share * twist + 0.008 * body[:, 1]
        roll = (-shift_x if j == "spine1" else 0.0) + 0.004 * body[:, 2]
        rot[:, J[j]] = _euler_small(pitch, yaw, roll)
        trunk_pitch += pitch
        trunk_yaw += yaw

    # Head: nods on accents, shakes on negation, glances; posture from the head style. The neck and head
    # take out the trunk's lean and twist (the head stays level when the trunk leans).
    head_pitch, head_yaw, head_roll, shrug, head_events = _head_layers(
        pro, lex, t, head, np.random.default_rng([seed, 26]), act_l, act_r)
    head_pitch = head_pitch - trunk_pitch
    head_yaw = head_yaw - trunk_yaw
    rot[:, J["neck"]] = _euler_small(0.4 * head_pitch + 0.005 * body[:, 3], 0.4 * head_yaw, 0.4 * head_roll)
    rot[:, J["head"]] = _euler_small(0.6 * head_pitch + 0.005 * body[:, 4], 0.6 * head_yaw, 0.6 * head_roll)
    collar_dyn = 0.012 * (breath + 1.0) * 0.5 + (0.06 + 0.08 * torso.spatial_extent) * shrug + 0.004 * body[:, 5]
    rot[:, J["left_collar"]] = quat_mul(collar_l, _rot([0.0, 0.0, 1.0], collar_dyn))
    rot[:, J["right_collar"]] = _mirror_quat(rot[:, J["left_collar"]])

    # Low-pass in rotation space, per body part: its style's fluidity sets the width.
    rot = _continuous(rot)
    for part, s in ps.items():
        idx = _part_joints(part)
        rot[:, idx] = _gauss_smooth(rot[:, idx], 0.8 + 2.2 * s.fluidity)
    rot = quat_normalize(rot)
    root = _gauss_smooth(root, 0.8 + 2.2 * lower.fluidity)
    meta = {"engine": "rule", "engine_version": ENGINE_VERSION, "seed": int(seed),
            "events": _event_meta(plans[ps["left_arm"]], plans[ps["right_arm"]], realised),
            "head_events": [(round(a, 3), k) for a, k in head_events],
            "lexical": bool(lex), "accents": len(pro.acc_t)}
    motion = CanonicalMotion(rot, root, FPS, meta=meta)
    _limit_wrist_speed(motion, 2.8)
    _resolve_penetration(motion)
    _limit_wrist_speed(motion, 2.8)
    _resolve_penetration(motion)
    return motion


def _event_meta(plan_l: list[_Event], plan_r: list[_Event], realised: dict[str, dict[int, _Phases]]) -> list[dict]:
    def span(items: list[tuple[float, float] | None]) -> list[float] | None:
        got = [x for x in items if x is not None]
        if not got:
            return None
        return [round(min(a for a, _ in got), 3), round(max(b for _, b in got), 3)]

    rows: list[tuple[_Event, list[str]]] = []
    if plan_l is plan_r:
        for i, ev in enumerate(plan_l):
            arms = [a for a in ("L", "R") if i in realised[a]]
            if arms:
                rows.append((ev, arms))
        index = {id(ev): i for i, ev in enumerate(plan_l)}
    else:
        rows = [(plan_l[i], ["L"]) for i in realised["L"]] + [(plan_r[i], ["R"]) for i in realised["R"]]
        index = {**{id(ev): i for i, ev in enumerate(plan_l)}, **{id(ev): i for i, ev in enumerate(plan_r)}}
    out = []
    for ev, arms in sorted(rows, key=lambda r: r[0].t):
        ph = [realised[a][index[id(ev)]] for a in arms]
        out.append({
            "t": round(ev.t, 3), "kind": ev.kind, "type": GESTURE_TYPES[ev.kind],
            "hands": arms[0] if len(arms) == 1 else "B", "strength": round(float(ev.strength), 3),
            "word": ev.word, "lemma": ev.lemma,
            "prep": span([p.prep for p in ph]), "stroke": span([p.stroke for p in ph]),
            "hold": span([p.hold for p in ph]), "retract": span([p.retract for p in ph]),
        })
    return out


# ----------------------------------------------------------------------------------------------------
# Safety passes and measurements


def wrist_speed(motion: CanonicalMotion) -> np.ndarray:
    """(T, 2) speed in m/s of the left and right wrists (first frame repeats the second)."""
    _, pos = fast_fk(motion.rotations, motion.root)
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
        fast = np.any(sp > vmax, axis=1).astype(np.float64)
        weight = np.clip(_gauss_smooth(_dilate_mask(fast > 0, 3).astype(np.float64), 3.0) * 1.5, 0.0, 1.0)
        current = _continuous(motion.rotations[:, arm_joints])
        smoothed = _gauss_smooth(current, 2.5)
        w = weight[:, None, None]  # fade the smoothing in and out: no seam at the edges of the region
        motion.rotations[:, arm_joints] = quat_normalize(current * (1.0 - w) + smoothed * w)


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
    glob, pos = fast_fk(motion.rotations, motion.root)
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
        glob, pos = fast_fk(motion.rotations, motion.root)
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


