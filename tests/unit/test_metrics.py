"""The metric module: Fréchet distance properties, FGD through an extractor, diversity, beat alignment, jerk."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gestura.inference.rotations import axis_angle_to_quat
from gestura.inference.skeleton import NUM_JOINTS, REST_PELVIS_HEIGHT
from gestura.training.checkpoint import CheckpointError, save_checkpoint
from gestura.training.metrics import (
    FGDExtractor,
    diversity,
    evaluate_motion,
    fgd_from_embeddings,
    frechet_distance,
    mean_beat_alignment,
    mean_jerk,
)
from gestura.training.models.fgd import FGDConfig, FGDNet
from gestura.training.models.motion_ae import MotionAE, MotionAEConfig


def test_frechet_distance_of_known_gaussians():
    d = 4
    assert frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(0.0, abs=1e-9)
    # Means apart: the squared distance.
    assert frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d)) == pytest.approx(d)
    # Scaled isotropic covariances: d * (a - b)^2 for sigma = a^2 I and b^2 I.
    assert frechet_distance(np.zeros(d), 4 * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(d * 1.0)


def test_fgd_properties_on_embeddings():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    b = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    assert fgd_from_embeddings(a, a) == pytest.approx(0.0, abs=1e-7)
    assert fgd_from_embeddings(a, b) == pytest.approx(fgd_from_embeddings(b, a), rel=1e-6)
    small = fgd_from_embeddings(a, a + rng.normal(scale=0.05, size=a.shape))
    large = fgd_from_embeddings(a, a + rng.normal(scale=0.5, size=a.shape))
    assert 0 < small < large
    with pytest.raises(ValueError):
        fgd_from_embeddings(a[:1], b)


def test_diversity():
    same = np.ones((10, 4))
    assert diversity(same) == 0.0
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    assert diversity(2 * x) == pytest.approx(2 * diversity(x), rel=0.15)
    assert math.isnan(diversity(x[:1]))


def _clip(rng: np.random.Generator, frames: int, amp: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(frames)[:, None, None] / 30.0
    aa = amp * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, (1, NUM_JOINTS, 3)) * t + rng.uniform(0, 6, (1, NUM_JOINTS, 3)))
    root = np.tile([0.0, REST_PELVIS_HEIGHT, 0.0], (frames, 1))
    return axis_angle_to_quat(aa), root


@pytest.fixture(scope="module")
def extractor(tmp_path_factory) -> FGDExtractor:
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path_factory.mktemp("fgd") / "best", FGDNet(FGDConfig(channels=32, embed_dim=8)))
    return FGDExtractor.load(path)


def test_fgd_through_the_extractor(extractor):
    rng = np.random.default_rng(2)
    real = [_clip(rng, 120, 0.2) for _ in range(12)]
    other_real = [_clip(rng, 120, 0.2) for _ in range(12)]
    shaky = [(axis_angle_to_quat(0.6 * np.random.default_rng(k).normal(size=(120, NUM_JOINTS, 3))), r)
             for k, (_, r) in enumerate(real)]
    assert extractor.fgd(real, real) == pytest.approx(0.0, abs=1e-6)
    same_kind = extractor.fgd(real, other_real)
    different = extractor.fgd(real, shaky)
    assert different > same_kind
    assert extractor.fgd(real, shaky) == pytest.approx(extractor.fgd(shaky, real), rel=1e-6)
    # 120 frames, windows of 32 every 8 frames: 12 windows per clip.
    assert extractor.embed(real).shape == (12 * 12, 8)
    report = evaluate_motion(shaky, real, extractor, onsets=[np.array([0.5, 1.5, 2.5])] * len(shaky))
    assert report["fgd"] == pytest.approx(different)
    assert report["fgd_extractor"]["embed_dim"] == 8
    assert report["jerk"] > mean_jerk(real) and 0 <= report["beat_alignment"] <= 1


def test_extractor_refuses_another_model(tmp_path):
    path = save_checkpoint(tmp_path / "ae", MotionAE(MotionAEConfig(latent_dim=4, channels=dict.fromkeys(
        ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body"), 16))))
    with pytest.raises(CheckpointError, match="not an FGD extractor"):
        FGDExtractor.load(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        FGDExtractor.load(tmp_path / "missing")


def test_beat_alignment_and_jerk_means():
    rng = np.random.default_rng(3)
    clips = [_clip(rng, 90, 0.3) for _ in range(3)]
    assert mean_jerk(clips) > mean_jerk([_clip(rng, 90, 0.05) for _ in range(3)])
    assert math.isnan(mean_beat_alignment(clips, [np.zeros(0)] * 3))
    with pytest.raises(ValueError):
        mean_beat_alignment(clips, [np.zeros(0)])
