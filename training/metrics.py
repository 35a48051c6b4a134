"""The metrics every Gestura evaluation reports on generated motion, in one place.

- FGD (Fréchet Gesture Distance, Yoon et al. 2020): the Fréchet distance between Gaussians fitted to the
  embeddings of real and of generated motion, embeddings from the FGD feature extractor
  (training/models/fgd.py: a full-body autoencoder over 32-frame windows, stride 8 frames; checkpoint
  ``training/weights/fgd`` by default, see docs/TRAINING.md). Always report which checkpoint was used
  (``FGDExtractor.describe()``): FGD values from different extractors are not comparable.
- Diversity: mean L1 distance between embeddings of random pairs of windows (Lee et al. 2019 / BEAT).
- Beat alignment: BEAT's score (inference.gesture_metrics.beat_alignment, sigma 0.3 s) of the motion against
  the audio's onsets, averaged over clips.
- Jerk: mean magnitude of the wrists' jerk, m/s^3 (inference.gesture_metrics.jerk), averaged over clips.

Motion is given as ``CanonicalMotion`` or as (rotations (T, 52, 4), root (T, 3)) pairs at 30 fps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inference.motion import CanonicalMotion

# The extractor behind the reference figures in docs/TRAINING.md, committed so every evaluation compares alike.
DEFAULT_FGD_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "fgd"
FGD_CHECKPOINT_ENV = "GESTURA_FGD_CHECKPOINT"
WINDOW_STRIDE = 8

MotionLike = CanonicalMotion | tuple[np.ndarray, np.ndarray]


def as_motion(m: MotionLike, fps: float = 30.0) -> CanonicalMotion:
    if isinstance(m, CanonicalMotion):
        return m
    rotations, root = m
    return CanonicalMotion(np.asarray(rotations), np.asarray(root), fps)


# ---------------------------------------------------------------------------------------------------------
# Fréchet distance and diversity on embeddings


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with tr (S1 S2)^(1/2) computed as the trace of
    (S1^(1/2) S2 S1^(1/2))^(1/2) (symmetric PSD: stable and real, no scipy)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    r1 = _sqrtm_psd(s1)
    middle = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    tr_covmean = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"need (N >= 2, D) embeddings, got {e.shape}")
    return e.mean(0), np.cov(e, rowvar=False)


def fgd_from_embeddings(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings (N, D)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


def diversity(embeddings: np.ndarray, pairs: int = 2000, seed: int = 0) -> float:
    """Mean L1 distance between the embeddings of random pairs (all pairs when there are few)."""
    e = np.asarray(embeddings, np.float64)
    n = len(e)
    if n < 2:
        return math.nan
    if n * (n - 1) // 2 <= pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, pairs)
        j = (i + rng.integers(1, n, pairs)) % n  # never i itself
    return float(np.mean(np.abs(e[i] - e[j]).sum(-1)))


# ---------------------------------------------------------------------------------------------------------
# The extractor


@dataclass
class FGDExtractor:
    """A trained FGDNet and where it came from."""

    model: Any  # FGDNet
    checkpoint: str
    step: int
    code_version: str
    device: torch.device

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> FGDExtractor:
        """The extractor in ``path``, else $GESTURA_FGD_CHECKPOINT, else the committed training/weights/fgd."""
        from .checkpoint import CheckpointError, load_model
        from .models.fgd import FGDNet

        path = Path(path or os.environ.get(FGD_CHECKPOINT_ENV) or DEFAULT_FGD_CHECKPOINT)
        model, ckpt = load_model(path, device)
        if not isinstance(model, FGDNet):
            raise CheckpointError(f"{path} holds a {ckpt.model_class}, not an FGD extractor")
        return cls(model, str(path), ckpt.step, str(ckpt.meta.get("code_version", "unknown")), torch.device(device))

    @property
    def window(self) -> int:
        return int(self.model.config.window)

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "step": self.step, "code_version": self.code_version,
                "window": self.window, "stride": WINDOW_STRIDE, "embed_dim": int(self.model.config.embed_dim)}

    @torch.no_grad()
    def embed(self, motions: Sequence[MotionLike], stride: int = WINDOW_STRIDE, batch: int = 512) -> np.ndarray:
        """Embeddings (N_windows, D) of every ``window``-frame window (step ``stride``) of every clip; clips
        shorter than a window are skipped."""
        from .models.fgd import window_features

        self.model.eval()
        w = self.window
        feats = []
        for m in motions:
            mo = as_motion(m)
            if mo.num_frames < w:
                continue
            q = torch.as_tensor(mo.rotations, dtype=torch.float32)
            r = torch.as_tensor(mo.root, dtype=torch.float32)
            starts = torch.arange(0, mo.num_frames - w + 1, stride)
            idx = starts[:, None] + torch.arange(w)[None]
            feats.append(window_features(q[idx], r[idx]))
        if not feats:
            return np.zeros((0, int(self.model.config.embed_dim)))
        allf = torch.cat(feats)
        out = [self.model.embed(allf[k:k + batch].to(self.device)).cpu() for k in range(0, len(allf), batch)]
        return torch.cat(out).numpy().astype(np.float64)

    def fgd(self, real: Sequence[MotionLike] | np.ndarray, generated: Sequence[MotionLike] | np.ndarray) -> float:
        """FGD between two sets of clips (or precomputed embeddings)."""
        a = real if isinstance(real, np.ndarray) else self.embed(real)
        b = generated if isinstance(generated, np.ndarray) else self.embed(generated)
        return fgd_from_embeddings(a, b)


# ---------------------------------------------------------------------------------------------------------
# Per-clip metrics


def mean_beat_alignment(motions: Sequence[MotionLike], onsets: Sequence[np.ndarray], sigma: float = 0.3) -> float:
    """BEAT's beat alignment averaged over clips (clips without onsets are skipped)."""
    from ..inference.gesture_metrics import beat_alignment

    if len(motions) != len(onsets):
        raise ValueError(f"{len(motions)} motions but {len(onsets)} onset lists")
    scores = [beat_alignment(o, as_motion(m), sigma=sigma) for m, o in zip(motions, onsets, strict=True)]
    scores = [s for s in scores if not math.isnan(s)]
    return float(np.mean(scores)) if scores else math.nan


def mean_jerk(motions: Sequence[MotionLike]) -> float:
    """Mean wrist jerk (m/s^3) averaged over clips."""
    from ..inference.gesture_metrics import jerk

    return float(np.mean([jerk(as_motion(m)) for m in motions])) if motions else math.nan


def audio_onsets(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """Onset times (s) of int16 or float audio, for beat alignment (librosa's detector via inference.audio)."""
    from ..inference.audio import Audio, onset_times

    a = np.asarray(audio)
    samples = a.astype(np.float32) / 32768.0 if a.dtype == np.int16 else a.astype(np.float32)
    return onset_times(Audio(samples, sample_rate))


def evaluate_motion(
    generated: Sequence[MotionLike],
    real: Sequence[MotionLike] | None = None,
    extractor: FGDExtractor | None = None,
    onsets: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """The standard report: FGD against ``real`` (when both ``real`` and ``extractor`` are given), diversity
    (with an extractor), beat alignment (with ``onsets``, one array per generated clip) and jerk."""
    out: dict[str, Any] = {"clips": len(generated), "jerk": mean_jerk(generated)}
    if onsets is not None:
        out["beat_alignment"] = mean_beat_alignment(generated, onsets)
    if extractor is not None:
        emb = extractor.embed(generated)
        out["diversity"] = diversity(emb)
        if real is not None:
            out["fgd"] = fgd_from_embeddings(extractor.embed(real), emb)
        out["fgd_extractor"] = extractor.describe()
    return out
