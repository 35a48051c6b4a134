"""The shipped diffusion model (models/starter/) on the example speech: what a user would notice.

GESTURA_TEST_MODEL points the tests at another model folder (used while a model is being trained)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.audio import Audio, audio_features, load_audio
from gestura.inference.diffusion_engine import DEFAULT_MODEL_DIR, KnownMotion, generate_diffusion
from gestura.inference.errors import InputError
from gestura.inference.pipeline import EngineOptions
from gestura.inference.skeleton import BODY_PARTS, JOINT_INDEX
from gestura.inference.transcript import Word, load_transcript

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "examples" / "speech" / "hello.wav"
MODEL = os.environ.get("GESTURA_TEST_MODEL", str(DEFAULT_MODEL_DIR))


@pytest.fixture(scope="module")
def speech() -> tuple[Audio, object, list[Word]]:
    audio = load_audio(SPEECH)
    words = load_transcript(ROOT / "examples" / "speech" / "hello.TextGrid", audio)
    return audio, audio_features(audio), words


def generate(speech, prompt: str = "", seed: int = 0, **options):  # noqa: ANN001, ANN003, ANN201
    audio, feats, words = speech
    motion, _why = generate_diffusion(audio, feats, words, prompt, seed=seed,
                                     options=EngineOptions(model_dir=MODEL, **options))
    return motion


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (degrees) between quaternion arrays."""
    dot = np.clip(np.abs(np.sum(a * b, axis=-1)), 0.0, 1.0)
    return np.degrees(2 * np.arccos(dot))


def part_change(m1, m2, part: str) -> float:
    idx = [JOINT_INDEX[j] for j in BODY_PARTS[part]]
    return float(angles(m1.rotations[:, idx], m2.rotations[:, idx]).mean())


def wrist_speed(motion) -> float:
    from gestura.inference.gesture_metrics import fast_fk

    _, pos = fast_fk(motion.rotations, motion.root)
    w = pos[:, [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]]]
    return float(np.linalg.norm(np.diff(w, axis=0), axis=-1).mean() * motion.fps)


def test_generates_a_finite_reproducible_motion_that_moves(speech) -> None:
    a = generate(speech, "a calm teacher", seed=3)
    b = generate(speech, "a calm teacher", seed=3)
    c = generate(speech, "a calm teacher", seed=4)
    audio = speech[0]
    assert a.num_frames == int(np.ceil(audio.duration * 30 - 1e-9))
    assert np.all(np.isfinite(a.rotations)) and np.all(np.isfinite(a.root))
    assert np.allclose(a.rotations, b.rotations, atol=1e-5)
    assert part_change(a, c, "right_arm") > 1.0  # another seed, another take
    assert wrist_speed(a) > 0.05  # the hands move while talking (m/s)
    assert a.meta["engine"] == "diffusion" and a.meta["steps"] > 0
    import torch

    assert torch.is_grad_enabled()  # generation leaves the process's autograd state alone (training shares it)


def test_style_prompt_changes_the_motion_measurably(speech) -> None:
    angry = np.mean([wrist_speed(generate(speech, "furious and shouting, an angry man", seed=s)) for s in range(2)])
    sleepy = np.mean([wrist_speed(generate(speech, "a sleepy person who can barely stay awake", seed=s))
                      for s in range(2)])
    assert angry > 1.3 * sleepy


def test_strength_zero_ignores_the_prompt(speech) -> None:
    a = generate(speech, "an angry man", strength=0.0)
    b = generate(speech, "a sleepy person", strength=0.0)
    assert np.allclose(a.rotations, b.rotations, atol=1e-5)


def test_a_part_prompt_changes_its_part_much_more_than_the_others(speech) -> None:
    base = generate(speech, "a calm teacher", seed=1)
    arms = generate(speech, "a calm teacher; arms: furious and shouting, an angry man", seed=1)
    arm_change = (part_change(base, arms, "left_arm") + part_change(base, arms, "right_arm")) / 2
    for other in ("head", "lower_body"):
        assert part_change(base, arms, other) < 0.5 * arm_change, other


def test_a_pinned_pose_is_reproduced_within_two_degrees(speech) -> None:
    free = generate(speech, "a confident speaker", seed=2)
    n = free.num_frames
    pose = free.rotations.copy()
    frame = n // 2
    # Pin a pose different from what the model made there: raise the right arm's shoulder by 40 degrees.
    from gestura.inference.rotations import quat_from_axis_angle, quat_mul

    lift = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), np.radians(40.0))
    target = pose[frame].copy()
    target[JOINT_INDEX["right_shoulder"]] = quat_mul(lift, target[JOINT_INDEX["right_shoulder"]])
    rotations = np.repeat(target[None], n, axis=0)
    mask = np.zeros(n, bool)
    mask[frame] = True
    audio, feats, words = speech
    pinned, _ = generate_diffusion(audio, feats, words, "a confident speaker", seed=2,
                                   options=EngineOptions(model_dir=MODEL),
                                   known=KnownMotion(rotations, np.repeat(free.root[frame][None], n, 0), mask))
    assert angles(pinned.rotations[frame], target).max() < 2.0
    # ... and the motion reaches it smoothly (no single-frame snap bigger than the motion's own moves).
    steps = angles(pinned.rotations[1:], pinned.rotations[:-1])
    assert steps[frame - 8:frame + 8].max() < 3.0 * np.percentile(steps, 99.5) + 1.0


def test_long_speech_continues_across_windows_without_seams(speech) -> None:
    audio, _, words = speech
    reps = 4  # ~43 s: several 17-second windows
    long_audio = Audio(np.tile(audio.samples, reps), audio.sample_rate, "tiled")
    long_words = [Word(w.text, w.start + k * audio.duration, w.end + k * audio.duration)
                  for k in range(reps) for w in words]
    motion, _ = generate_diffusion(long_audio, audio_features(long_audio), long_words, "a joyful storyteller",
                                   options=EngineOptions(model_dir=MODEL))
    assert motion.num_frames == int(np.ceil(long_audio.duration * 30 - 1e-9))
    steps = angles(motion.rotations[1:], motion.rotations[:-1]).max(axis=1)  # largest joint change per frame
    window, overlap = 128 * 4, 16 * 4  # frames: the model's defaults
    seams = list(range(window - overlap, motion.num_frames - 1, window - overlap))
    assert seams
    near = np.concatenate([steps[max(0, s - 4):s + 4] for s in seams])
    assert near.max() <= np.percentile(steps, 99.5) + 1e-6


def test_missing_model_folder_is_a_clear_error(speech, tmp_path) -> None:
    audio, feats, words = speech
    with pytest.raises(InputError, match="No Gestura diffusion model"):
        generate_diffusion(audio, feats, words, "", options=EngineOptions(model_dir=str(tmp_path)))


def test_batched_variations_equal_single_runs_with_their_seeds(speech) -> None:
    from gestura.inference.diffusion_engine import generate_diffusion_takes

    audio, feats, words = speech
    takes, _ = generate_diffusion_takes(audio, feats, words, "a joyful storyteller", seeds=[5, 6],
                                        options=EngineOptions(model_dir=MODEL))
    single = generate(speech, "a joyful storyteller", seed=6)
    assert len(takes) == 2 and takes[1].meta["seed"] == 6
    assert angles(takes[1].rotations, single.rotations).max() < 0.05
    assert part_change(takes[0], takes[1], "right_arm") > 1.0


def test_part_mixing_splits_the_prompt_into_styles_and_guides_each_part_by_its_own(speech) -> None:
    from gestura.inference.diffusion_engine import StyleCondition, conditional_passes, load_model, prompt_style_codes

    model = load_model(MODEL)
    style = prompt_style_codes(model, "a calm teacher; arms: an angry man; head:")
    parts = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
    groups = dict(zip(parts, style.part_style.tolist(), strict=True))
    assert groups["head"] == -1  # an empty section leaves the head unprompted
    assert groups["torso"] == groups["lower_body"] != groups["left_arm"] == groups["right_hand"]
    assert style.style_codes.shape[0] == 2
    codes, null, pick = conditional_passes(style, "compose")
    assert codes.shape[0] == 2 and not null.any() and pick.tolist() == style.part_style.tolist()
    codes, null, pick = conditional_passes(style, "codes")  # one pass, each part its own code, null where unprompted
    assert codes.shape[0] == 1 and null[0].tolist() == [True] + [False] * 6 and pick[0] == -1
    assert np.allclose(codes[0][2], style.style_codes[groups["left_arm"], 2])

    # One style for the whole body: both mixings are the same single conditional pass.
    single = generate(speech, "a calm teacher", seed=5)
    assert np.allclose(generate(speech, "a calm teacher", seed=5, part_mixing="codes").rotations, single.rotations,
                       atol=1e-5)
    # A style split over two identical halves composes back to the single style exactly.
    whole = prompt_style_codes(model, "a calm teacher")
    halves = StyleCondition(np.concatenate([whole.style_codes, whole.style_codes]),
                            np.array([0, 0, 1, 1, 1, 1, 0]), "two halves")
    assert np.allclose(conditional_passes(halves, "compose")[0], whole.style_codes[[0, 0]])
    with pytest.raises(InputError, match="part mixing"):
        generate(speech, "a calm teacher", part_mixing="blend")


def test_keyword_matching_gives_the_same_structure_as_the_text_adapter() -> None:
    from gestura.inference.diffusion_engine import keyword_style_codes, load_model

    model = load_model(MODEL)
    style = keyword_style_codes(model, "calm teacher; arms: angry")
    assert style.style_codes.shape[0] == 2 and style.mask.all()
    assert style.part_style[2] != style.part_style[0]
    assert keyword_style_codes(model, "").style_codes.shape[0] == 0
    # A later section that restyles every part of an earlier one leaves no unused style behind.
    assert keyword_style_codes(model, "arms: angry; arms: sad").style_codes.shape[0] == 1


def test_a_style_guidance_step_moves_only_the_guided_parts_towards_their_codes() -> None:
    import torch

    from gestura.inference.diffusion_engine import load_model, prompt_style_codes, steer_to_style

    model = load_model(MODEL)
    target = torch.as_tensor(prompt_style_codes(model, "furious and shouting, an angry man").style_codes[0])
    torch.manual_seed(0)
    with torch.inference_mode():  # as generation calls it
        x0 = torch.randn(2, 40, 7, model.denoiser.config.latent_dim) * 0.5
        guided = torch.tensor([False, True, True, True, True, True, False])
        moved = steer_to_style(model, x0, target, guided, 0.2)

    def similarity(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (model.style_encoder(model.denoiser.denormalize(x)) * target).sum(-1)  # (2, P)

    gain = similarity(moved) - similarity(x0)
    assert torch.all(gain[:, guided] > 0.01), gain
    assert torch.equal(moved[:, :, ~guided], x0[:, :, ~guided])  # head and legs untouched
    step = (moved - x0)[:, :, guided].pow(2).mean(dim=(1, 3)).sqrt()
    assert torch.allclose(step, torch.full_like(step, 0.2), rtol=1e-3)  # the step's size is the one asked for


def test_style_guidance_brings_the_motion_closer_to_the_prompted_style(speech) -> None:
    from gestura.inference.diffusion_engine import load_model, motion_style_codes, prompt_style_codes

    model = load_model(MODEL)
    prompt = "a thoughtful professor"
    target = prompt_style_codes(model, prompt).style_codes[0]

    def similarity(motion) -> float:  # noqa: ANN001
        return float((motion_style_codes(model, motion) * target)[1:6].sum(-1).mean())

    plain = [similarity(generate(speech, prompt, seed=s, style_guidance=0.0)) for s in range(2)]
    steered = [similarity(generate(speech, prompt, seed=s, style_guidance=1.0)) for s in range(2)]
    assert np.mean(steered) > np.mean(plain) + 0.03, (plain, steered)  # same seeds: 0 without guidance
    with pytest.raises(InputError, match="Style guidance"):
        generate(speech, prompt, style_guidance=float("nan"))


def test_an_example_motion_gives_unit_codes_per_part_and_a_too_short_one_a_clear_error(speech) -> None:
    from gestura.inference.diffusion_engine import load_model, motion_style_codes
    from gestura.inference.motion import CanonicalMotion

    model = load_model(MODEL)
    motion = generate(speech, "an angry man")
    codes = motion_style_codes(model, motion)  # outside any inference block, as a script would call it
    assert codes.shape == (7, model.style_encoder.config.dim)
    assert np.allclose(np.linalg.norm(codes, axis=-1), 1.0, atol=1e-4)
    short = CanonicalMotion(motion.rotations[:8], motion.root[:8], motion.fps)
    with pytest.raises(InputError, match="too short"):
        motion_style_codes(model, short)
