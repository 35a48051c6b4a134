"""The weights committed under training/weights load (safetensors + JSON only) and do their job on motion
they have never seen: a clip the rule engine makes now for the bundled example speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gestura.inference.audio import audio_features, load_audio  # noqa: E402
from gestura.inference.rule_engine import generate_rule_based  # noqa: E402
from gestura.inference.style_catalog import style_by_name  # noqa: E402
from gestura.inference.transcript import load_transcript  # noqa: E402
from gestura.training.checkpoint import load_model  # noqa: E402
from gestura.training.metrics import FGDExtractor  # noqa: E402
from gestura.training.models.motion_ae import fk_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "training" / "weights"
SPEECH = ROOT / "examples" / "speech"


@pytest.fixture(scope="module")
def clip():
    audio = load_audio(SPEECH / "hello.wav")
    words = load_transcript(SPEECH / "hello.srt", audio)
    motion = generate_rule_based(audio_features(audio), words, style_by_name("joyful_storyteller").params, seed=3)
    return torch.as_tensor(motion.rotations[None]), torch.as_tensor(motion.root[None])


def test_motion_autoencoder_reconstructs_unseen_motion_within_2_cm(clip):
    model, ckpt = load_model(WEIGHTS / "motion_ae")
    model.eval()
    quats, root = clip
    _, rotmats, rec_root = model.reconstruct(quats, root)
    from gestura.training.models.motion_ae import quat_to_matrix_torch

    gt = fk_torch(quat_to_matrix_torch(quats.float()), root.float())
    rec = fk_torch(rotmats, rec_root)
    mpjpe_cm = float((rec - gt).norm(dim=-1).mean()) * 100
    assert mpjpe_cm < 2.0, mpjpe_cm
    assert ckpt.step > 0


def test_fgd_extractor_tells_motion_from_noise(clip):
    extractor = FGDExtractor.load()
    quats, root = clip
    real = [(quats[0].numpy(), root[0].numpy())]
    rng = np.random.default_rng(0)
    noisy_q = quats[0].numpy() + rng.normal(0, 0.08, quats[0].shape).astype(np.float32)
    noisy_q /= np.linalg.norm(noisy_q, axis=-1, keepdims=True)
    same = extractor.fgd(real, real)
    noisy = extractor.fgd(real, [(noisy_q, root[0].numpy())])
    assert same < 1e-6 < noisy
