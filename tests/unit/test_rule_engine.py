"""Rule-based gesture engine: what a user would notice in the motion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gestura.inference import rule_engine as RE
from gestura.inference.motion import CanonicalMotion
from gestura.inference.skeleton import JOINT_INDEX as J
from gestura.inference.skeleton import bone_directions, forward_kinematics
from gestura.inference.style import NAMED_STYLES, NEUTRAL, StyleParams

try:  # the real containers, when they exist; the engine only reads these attributes
    from gestura.inference.audio import AudioFeatures
except ImportError:  # pragma: no cover
    @dataclasses.dataclass
    class AudioFeatures:  # type: ignore[no-redef]
        fps: float
        energy: np.ndarray
        onset: np.ndarray
        pitch_hz: np.ndarray
        voiced: np.ndarray
        log_mel: np.ndarray

        @property
        def num_frames(self) -> int:
            return int(self.energy.shape[0])

try:
    from gestura.inference.transcript import Word
except ImportError:  # pragma: no cover
    @dataclasses.dataclass(frozen=True)
    class Word:  # type: ignore[no-redef]
        text: str
        start: float
        end: float

FPS = 30.0
PAUSES = ((9.0, 12.0), (20.0, 21.0))


def make_features(duration=30.0, seed=0, pauses=PAUSES, fps=FPS, silent=False):
    """Synthetic speech: voiced stretches with clear prosodic peaks every 0.45-0.9 s, and pauses."""
    rng = np.random.default_rng(seed)
    n = int(round(duration * fps))
    t = np.arange(n) / fps
    voiced = np.zeros(n, bool) if silent else np.ones(n, bool)
    for a, b in pauses:
        voiced[(t >= a) & (t < b)] = False
    peaks = []
    x = 0.6
    while x < duration - 0.4 and not silent:
        if voiced[int(x * fps)] and all(not (a - 0.3 < x < b + 0.3) for a, b in pauses):
            peaks.append(x)
        x += rng.uniform(0.45, 0.9)
    onset = np.zeros(n)
    for p in peaks:
        onset += rng.uniform(0.6, 1.0) * np.exp(-0.5 * ((t - p) / 0.05) ** 2)
    onset = np.clip(onset + 0.05 * rng.random(n), 0, 1) * voiced
    energy = (0.3 + 0.5 * np.convolve(onset, np.ones(5) / 5, "same")) * voiced
    feats = AudioFeatures(fps=fps, energy=energy, onset=onset, pitch_hz=np.where(voiced, 140.0, 0.0),
                          voiced=voiced, log_mel=np.zeros((n, 64), np.float32))
    return feats, np.array(peaks)


@pytest.fixture(scope="module")
def speech():
    return make_features()


@pytest.fixture(scope="module")
def neutral_motion(speech):
    return RE.generate_rule_based(speech[0], None, NEUTRAL, seed=0)


def speeds(m: CanonicalMotion) -> np.ndarray:
    return RE.wrist_speed(m)


def motion_beats(m: CanonicalMotion) -> np.ndarray:
    """Times of local minima of wrist speed (either wrist), as in the BEAT beat-alignment metric."""
    out = []
    for k in range(2):
        s = RE._gauss_smooth(speeds(m)[:, k], 1.0)
        mins = np.flatnonzero((s[1:-1] < s[:-2]) & (s[1:-1] <= s[2:])) + 1
        out.extend(mins.tolist())
    return np.array(sorted(out)) / m.fps


def beat_alignment(peaks: np.ndarray, mbeats: np.ndarray, sigma: float = 0.3) -> float:
    return float(np.mean([np.exp(-np.min((mbeats - p) ** 2) / (2 * sigma**2)) for p in peaks]))


def plausible(m: CanonicalMotion) -> None:
    assert np.all(np.isfinite(m.rotations)) and np.all(np.isfinite(m.root))
    assert np.allclose(np.linalg.norm(m.rotations, axis=-1), 1.0, atol=1e-6)
    assert speeds(m).max() < 3.0
    assert RE.min_hand_body_clearance(m) > 0.0


# ----------------------------------------------------------------------------------------------------


def test_output_shape_and_sanity(speech, neutral_motion):
    m = neutral_motion
    assert isinstance(m, CanonicalMotion)
    assert m.fps == 30.0 and m.num_frames == speech[0].num_frames
    plausible(m)
    # frame-to-frame: no pops in any joint
    d = np.abs(np.sum(m.rotations[1:] * m.rotations[:-1], -1))
    assert np.degrees(2 * np.arccos(np.clip(d, -1, 1))).max() < 20.0


def test_wrists_move_while_speaking_and_rest_in_long_silence(neutral_motion):
    sp = speeds(neutral_motion).max(axis=1)
    t = np.arange(len(sp)) / 30.0
    quiet = (t > 10.0) & (t < 11.0)  # middle of the 3 s pause
    talk = (t > 1.0) & (t < 8.5)
    assert sp[talk].mean() > 0.15
    assert sp[quiet].mean() < 0.05
    assert sp[talk].mean() > 5 * sp[quiet].mean()
    # and in the pause the arms hang at the sides
    _, pos = neutral_motion.global_rotations_and_positions()
    i = int(10.5 * 30)
    for side in ("left", "right"):
        w, s = pos[i, J[f"{side}_wrist"]], pos[i, J[f"{side}_shoulder"]]
        assert w[1] < s[1] - 0.4
        assert abs(w[0]) > abs(pos[i, J[f"{side}_hip"], 0]) + 0.05


def test_stroke_apexes_align_with_prosodic_peaks(speech, neutral_motion):
    _, peaks = speech
    score = beat_alignment(peaks, motion_beats(neutral_motion))
    assert score > 0.7
    # and a motion with shuffled timing would not score as well on the peak-dense parts
    events = [e for e in neutral_motion.meta["events"] if e[1] == "beat"]
    assert len(events) > 0.6 * len(peaks)


@pytest.mark.parametrize("seed", [1, 2])
def test_beat_alignment_other_seeds_and_styles(speech, seed):
    for name in ("excited_keynote_speaker", "calm_teacher"):
        m = RE.generate_rule_based(speech[0], None, NAMED_STYLES[name], seed=seed)
        assert beat_alignment(speech[1], motion_beats(m)) > 0.7, name


def test_silence_is_rest_with_breathing():
    feats, _ = make_features(duration=8.0, silent=True)
    m = RE.generate_rule_based(feats, None, NEUTRAL, seed=0)
    plausible(m)
    assert speeds(m).max() < 0.1
    _, pos = m.global_rotations_and_positions()
    for side in ("left", "right"):
        w, s = pos[:, J[f"{side}_wrist"]], pos[:, J[f"{side}_shoulder"]]
        assert np.all(w[:, 1] < s[:, 1] - 0.4)  # arms hang
        assert np.all(np.abs(w[:, 0]) > 0.15)  # beside the hips, not in front of the belly
    # breathing: the chest moves a little, periodically
    spine3 = m.rotations[:, J["spine3"]]
    ang = np.degrees(2 * np.arccos(np.clip(np.abs(spine3[:, 0]), 0, 1)))
    assert 0.05 < np.ptp(ang) < 5.0
    assert m.meta["events"] == []


@pytest.mark.parametrize("rest", ["sides", "front", "behind"])
def test_rest_poses(rest):
    feats, _ = make_features(duration=12.0, seed=5)
    m = RE.generate_rule_based(feats, None, dataclasses.replace(NEUTRAL, rest_pose=rest), seed=0)
    plausible(m)
    _, pos = m.global_rotations_and_positions()
    w = pos[0, J["left_wrist"]]
    assert w[1] < pos[0, J["left_shoulder"], 1] - 0.25
    if rest == "front":
        assert w[2] > 0.12
    if rest == "behind":
        assert w[2] < -0.1


def _word_motion(word: str, t0: float = 3.0, seed: int = 0):
    feats, _ = make_features(duration=8.0, seed=7, pauses=())
    words = [Word("so", t0 - 1.5, t0 - 1.3), Word(word, t0, t0 + 0.3), Word("again", t0 + 1.6, t0 + 1.9)]
    return RE.generate_rule_based(feats, words, NEUTRAL, seed=seed), feats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_you_points_forward_with_index_finger(seed):
    m, _ = _word_motion("you", seed=seed)
    glob, _ = forward_kinematics(m.rotations[int(3.0 * 30)], m.root[int(3.0 * 30)])
    d = bone_directions(glob)
    ok = []
    for side in ("left", "right"):
        index = d[J[f"{side}_index2"]]
        middle = d[J[f"{side}_middle3"]]
        hand = d[J[f"{side}_wrist"]]
        ok.append(index[2] > 0.8 and index @ hand > 0.9 and middle @ hand < 0.2)
    assert any(ok)


def _head_yaw(m: CanonicalMotion) -> np.ndarray:
    glob, _ = m.global_rotations_and_positions()
    from gestura.inference.rotations import quat_rotate
    fwd = quat_rotate(glob[:, J["head"]], np.broadcast_to([0.0, 0.0, 1.0], (m.num_frames, 3)))
    return np.arctan2(fwd[:, 0], fwd[:, 2])


def test_no_shakes_the_head():
    m_no, _ = _word_motion("no")
    m_plain, _ = _word_motion("blue")
    w = slice(int(2.9 * 30), int(3.9 * 30))
    yaw = _head_yaw(m_no)[w]
    vel = np.diff(yaw)
    turns = np.sum(np.sign(vel[1:]) != np.sign(vel[:-1]))
    assert np.ptp(yaw) > 0.12
    assert turns >= 2
    assert np.ptp(yaw) > 2.5 * np.ptp(_head_yaw(m_plain)[w])


def test_yes_nods():
    m_yes, _ = _word_motion("yes")
    glob, _ = m_yes.global_rotations_and_positions()
    from gestura.inference.rotations import quat_rotate
    fwd = quat_rotate(glob[:, J["head"]], np.broadcast_to([0.0, 0.0, 1.0], (m_yes.num_frames, 3)))
    pitch = np.arcsin(np.clip(-fwd[:, 1], -1, 1))[int(2.9 * 30):int(4.0 * 30)]
    assert np.ptp(pitch) > 0.1


@pytest.mark.parametrize(("word", "check"), [
    ("me", "chest"), ("big", "wide"), ("stop", "palm_forward"), ("idea", "near_head"), ("together", "close"),
])
def test_lexical_shapes(word, check):
    m, _ = _word_motion(word)
    i = int(3.0 * 30) + 2
    glob, pos = forward_kinematics(m.rotations[i], m.root[i])
    from gestura.inference.rotations import quat_rotate
    lw, rw = pos[J["left_wrist"]], pos[J["right_wrist"]]
    if check == "chest":
        assert any(abs(w[0]) < 0.15 and 1.1 < w[1] < 1.35 and 0.1 < w[2] < 0.35 for w in (lw, rw))
    elif check == "wide":
        assert lw[0] - rw[0] > 0.7 and lw[2] > 0.1 and rw[2] > 0.1
    elif check == "palm_forward":
        palms = [quat_rotate(glob[J[f"{s}_wrist"]], np.array([0.0, -1.0, 0.0])) for s in ("left", "right")]
        assert any(p[2] > 0.8 for p in palms)
    elif check == "near_head":
        head = pos[J["head"]] + [0, 0.08, 0.02]
        assert min(np.linalg.norm(lw - head), np.linalg.norm(rw - head)) < 0.3
    elif check == "close":
        assert lw[0] - rw[0] < 0.3 and lw[2] > 0.15
    assert RE.min_hand_body_clearance(m) > 0


def test_seeds_vary_but_same_seed_is_identical(speech):
    a = RE.generate_rule_based(speech[0], None, NEUTRAL, seed=11)
    b = RE.generate_rule_based(speech[0], None, NEUTRAL, seed=11)
    c = RE.generate_rule_based(speech[0], None, NEUTRAL, seed=12)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root, b.root)
    _, pa = a.global_rotations_and_positions()
    _, pc = c.global_rotations_and_positions()
    assert np.abs(pa - pc)[:, [J["left_wrist"], J["right_wrist"]]].mean() > 0.02
    plausible(c)
    sa, sc = speeds(a).mean(), speeds(c).mean()
    assert 0.6 < sa / sc < 1.6  # equally lively


def test_excited_is_bigger_and_faster_than_calm(speech):
    ex = RE.generate_rule_based(speech[0], None, NAMED_STYLES["excited_keynote_speaker"], seed=0)
    calm = RE.generate_rule_based(speech[0], None, NAMED_STYLES["calm_teacher"], seed=0)
    assert speeds(ex).mean() > 1.3 * speeds(calm).mean()

    def extent(m):
        _, pos = m.global_rotations_and_positions()
        w = pos[:, [J["left_wrist"], J["right_wrist"]]]
        return np.linalg.norm(w - pos[:, [J["spine2"]]], axis=-1).max(axis=1).mean()

    def reach(m, style):  # how far away from its own rest pose the hands go
        _, pos = m.global_rotations_and_positions()
        _, rest = forward_kinematics(RE.generate_rule_based(make_features(2.0, silent=True)[0], None,
                                                            style).rotations[0])
        w = pos[:, [J["left_wrist"], J["right_wrist"]]] - pos[:, [J["pelvis"]]]
        r = rest[[J["left_wrist"], J["right_wrist"]]] - rest[J["pelvis"]]
        return np.linalg.norm(w - r, axis=-1).mean()

    assert reach(ex, NAMED_STYLES["excited_keynote_speaker"]) > 1.3 * reach(calm, NAMED_STYLES["calm_teacher"])
    assert extent(ex) > extent(calm)


def test_power_and_posture_params_have_effect(speech):
    base = RE.generate_rule_based(speech[0], None, NEUTRAL, seed=0)
    lean = RE.generate_rule_based(speech[0], None, dataclasses.replace(NEUTRAL, torso_lean=0.3, head_tilt=-0.3),
                                  seed=0)
    _, pb = base.global_rotations_and_positions()
    _, pl = lean.global_rotations_and_positions()
    assert (pl[:, J["neck"], 2] - pb[:, J["neck"], 2]).mean() > 0.05  # upper body leans forward
    angry = RE.generate_rule_based(speech[0], None, NAMED_STYLES["angry"], seed=0)
    glob, _ = angry.global_rotations_and_positions()
    # forceful beats: fingers curl into fists during strokes (middle finger tip folds back)
    d = bone_directions(glob)
    fold = np.einsum("ti,ti->t", d[:, J["right_middle3"]], d[:, J["right_wrist"]])
    assert fold.min() < 0.0


def test_handedness_prefers_dominant_hand(speech):
    right = RE.generate_rule_based(speech[0], None, dataclasses.replace(NEUTRAL, handedness=1.0), seed=0)
    left = RE.generate_rule_based(speech[0], None, dataclasses.replace(NEUTRAL, handedness=-1.0), seed=0)
    sr, sl = speeds(right), speeds(left)
    assert sr[:, 1].mean() > 1.5 * sr[:, 0].mean()
    assert sl[:, 0].mean() > 1.5 * sl[:, 1].mean()


def test_other_feature_rate_is_resampled():
    feats, _ = make_features(duration=6.0, fps=50.0, pauses=())
    m = RE.generate_rule_based(feats, None, NEUTRAL, seed=0)
    assert m.fps == 30.0 and m.num_frames == 180
    plausible(m)


def test_long_random_input_never_penetrates_or_exceeds_speed():
    rng = np.random.default_rng(99)
    vocab = list(RE.WORD_TO_GESTURE) + ["the", "and", "blue", "house", "went"]
    for k in range(4):
        dur = 45.0
        n = int(dur * FPS)
        voiced = np.repeat(rng.random(n // 15) < 0.8, 15)[:n]
        voiced = np.concatenate([voiced, np.zeros(n - len(voiced), bool)])
        onset = np.clip(rng.random(n) ** 6 * 1.5, 0, 1) * voiced
        energy = np.clip(RE._gauss_smooth(onset, 3.0) * 3, 0, 1)
        feats = AudioFeatures(fps=FPS, energy=energy, onset=onset, pitch_hz=np.where(voiced, 120.0, 0.0),
                              voiced=voiced, log_mel=np.zeros((n, 64), np.float32))
        starts = np.sort(rng.uniform(0, dur, 90))
        words = [Word(str(rng.choice(vocab)), float(s), float(s) + 0.2) for s in starts]
        style = StyleParams(**{f: float(rng.random()) for f in ("spatial_extent", "temporal_extent", "fluidity",
                                                                 "power", "repetition", "activation")},
                            head_tilt=float(rng.uniform(-0.3, 0.3)), torso_lean=float(rng.uniform(-0.1, 0.3)),
                            shoulder_raise=float(rng.random()), handedness=float(rng.uniform(-1, 1)),
                            rest_pose=("sides", "front", "behind")[k % 3])
        m = RE.generate_rule_based(feats, words, style, seed=k)
        plausible(m)


@pytest.mark.parametrize("name", sorted(NAMED_STYLES))
def test_every_named_style_is_plausible(name):
    feats, _ = make_features(duration=15.0, seed=3)
    words = [Word(w, t, t + 0.25) for w, t in (("I", 1.0), ("you", 2.5), ("no", 4.0), ("big", 6.0),
                                                  ("there", 7.5), ("maybe", 13.0))]
    plausible(RE.generate_rule_based(feats, words, NAMED_STYLES[name], seed=1))


def test_wordless_and_empty_words_give_prosody_only(speech):
    a = RE.generate_rule_based(speech[0], None, NEUTRAL, seed=4)
    b = RE.generate_rule_based(speech[0], [], NEUTRAL, seed=4)
    assert np.array_equal(a.rotations, b.rotations)
    assert {e[1] for e in a.meta["events"]} == {"beat"}


def test_clearance_helper_detects_penetration():
    m = CanonicalMotion.rest(2)
    assert RE.min_hand_body_clearance(m) > 0.3  # T-pose: hands far away
    from gestura.inference.rotations import quat_from_axis_angle
    # swing the left arm forward and across the body so the hand ends inside the torso
    m.rotations[:, J["left_shoulder"]] = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), -np.pi / 2)
    m.rotations[:, J["left_elbow"]] = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), -np.pi * 0.85)
    assert RE.min_hand_body_clearance(m) < 0


def test_detect_beats_spacing_and_threshold():
    n = 300
    t = np.arange(n) / 30
    env = np.zeros(n)
    for p in (1.0, 1.15, 2.0, 3.0, 4.0, 5.0):
        env += np.exp(-0.5 * ((t - p) / 0.04) ** 2)
    env[int(4.0 * 30) - 5:int(4.0 * 30) + 5] *= 0.1  # a weak peak
    voiced = np.ones(n, bool)
    voiced[int(4.8 * 30):] = False
    idx, strength = RE.detect_beats(env, voiced, activation=0.5)
    times = idx / 30
    assert np.all(np.diff(times) >= 0.39)
    assert any(abs(times - 1.0) < 0.05) and any(abs(times - 2.0) < 0.05) and any(abs(times - 3.0) < 0.05)
    assert not any(abs(times - 5.0) < 0.1)  # unvoiced
    assert not any(abs(times - 4.0) < 0.1)  # weak
    assert np.all((strength > 0) & (strength <= 1))
