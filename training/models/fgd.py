"""The FGD feature extractor: a full-body motion autoencoder over 32-frame windows (Yoon et al. 2020's
embedding net, adapted to the canonical skeleton), whose pooled clip embedding is the space Fréchet Gesture
Distance and diversity are measured in (training/metrics.py).

Input per frame: the 52 joint positions relative to the pelvis (forward kinematics on the canonical skeleton,
metres, fingers included) and the root velocity (m/s), normalised by training-split statistics kept with the
weights. Encoder: strided temporal convolutions (32 -> 8 frames), mean and max pooled, a linear map to a
32-D embedding. Decoder: the embedding back to the window (MSE on features plus their velocity), which forces
the embedding to describe the motion itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...inference.skeleton import NUM_JOINTS
from .motion_ae import FPS, MotionSet, fk_torch, load_motion, quat_to_matrix_torch, root_velocity

FEATURES = NUM_JOINTS * 3 + 3


def window_features(quats: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., T, 52, 4) and root (..., T, 3) -> (..., T, 159): pelvis-relative joint positions and
    root velocity (m/s)."""
    quats, root = quats.float(), root.float()
    pos = fk_torch(quat_to_matrix_torch(quats), torch.zeros_like(root))
    return torch.cat([pos.flatten(-2), root_velocity(root)], dim=-1)


@dataclass
class FGDConfig:
    window: int = 32
    channels: int = 128
    embed_dim: int = 32


class FGDNet(nn.Module):
    """Autoencoder over (B, window, 159) feature windows with a pooled embedding (B, embed_dim)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: FGDConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or FGDConfig()
        if config.window % 4:
            raise ValueError("window must be a multiple of 4")
        c = config.channels
        self.encoder = nn.Sequential(
            nn.Conv1d(FEATURES, c, 3, padding=1), nn.SiLU(),
            nn.Conv1d(c, c, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv1d(c, c, 3, padding=1), nn.SiLU(),
            nn.Conv1d(c, c, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv1d(c, c, 3, padding=1),
        )
        self.to_embed = nn.Linear(2 * c, config.embed_dim)
        self.from_embed = nn.Linear(config.embed_dim, c * (config.window // 4))
        self.decoder = nn.Sequential(
            nn.SiLU(), nn.Conv1d(c, c, 3, padding=1), nn.SiLU(), nn.Upsample(scale_factor=2),
            nn.Conv1d(c, c, 3, padding=1), nn.SiLU(), nn.Upsample(scale_factor=2),
            nn.Conv1d(c, c, 3, padding=1), nn.SiLU(), nn.Conv1d(c, FEATURES, 3, padding=1),
        )
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("std", torch.ones(FEATURES))

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> FGDNet:
        return cls(FGDConfig(**d))

    @torch.no_grad()
    def set_normalization(self, feats: torch.Tensor, floor: float = 0.01) -> None:
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(floor))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """Feature windows (B, window, 159) (unnormalised, from window_features) -> embeddings (B, embed_dim)."""
        h = self.encoder(self.normalize(feats).transpose(1, 2))
        return self.to_embed(torch.cat([h.mean(-1), h.amax(-1)], dim=-1))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction in normalised units (B, window, 159), embedding)."""
        e = self.embed(feats)
        h = self.from_embed(e).reshape(e.shape[0], self.config.channels, self.config.window // 4)
        return self.decoder(h).transpose(1, 2), e


@dataclass
class FGDTaskConfig:
    corpus: str = "data/corpus"
    train_hours: float = 0.0
    val_clips: int = 40
    batch_size: int = 64
    w_vel: float = 1.0
    test_beats: bool = True  # test(): beat alignment of the test split (librosa onsets of its audio)
    model: dict[str, Any] = field(default_factory=dict)


class FGDTask:
    """Trains the FGD feature extractor on the corpus train split (see training/trainer.py's Task)."""

    name = "fgd"

    def __init__(self, config: FGDTaskConfig) -> None:
        self.config = config
        self.model_config = FGDConfig(**config.model)
        self.train_set = load_motion(config.corpus, "train", config.train_hours)
        self.val_set = load_motion(config.corpus, "val", max_clips=config.val_clips)
        self._val_windows: torch.Tensor | None = None

    def build_model(self) -> FGDNet:
        model = FGDNet(self.model_config)
        q, r = self.train_set.windows(np.random.default_rng(0), 256, self.model_config.window)
        model.set_normalization(window_features(q, r).flatten(0, 1))
        return model

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            q, r = self.train_set.windows(rng, self.config.batch_size, self.model_config.window)
            yield {"feats": window_features(q, r)}

    def _loss_terms(self, model: nn.Module, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ..checkpoint import unwrap

        rec, _ = model(feats)
        net = unwrap(model)
        assert isinstance(net, FGDNet)
        target = net.normalize(feats)
        mse = F.mse_loss(rec, target)
        vel = F.mse_loss(torch.diff(rec, dim=1), torch.diff(target, dim=1))
        return mse, vel

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        mse, vel = self._loss_terms(model, batch["feats"])
        return mse + self.config.w_vel * vel, {"mse": float(mse.detach()), "vel": float(vel.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self._val_windows is None:
            q, r = self.val_set.windows(np.random.default_rng(1), 512, self.model_config.window)
            self._val_windows = window_features(q, r)
        mse, vel = self._loss_terms(model, self._val_windows)
        return {"val_mse": float(mse), "val_vel": float(vel)}


    def test(self, model: nn.Module, trials: int = 5) -> dict[str, Any]:
        """The reference figures later evaluations compare to.

        - ``fgd_train_vs_test``: the loaded train clips (``train_hours``) against the whole test split;
        - ``fgd_subset_vs_test_{mean,std}``: random train subsets as large as the test split (in frames)
          against the test split, over ``trials`` subsets (seeds 0...);
        - ``fgd_train_vs_train_{mean,std}``: two disjoint such train subsets against each other: the spread of
          the estimator at this sample size (FGD between sets of ~1 h of this corpus is dominated by which
          styles the clips happen to have);
        - diversity of the test and train embeddings, beat alignment and jerk of the test split's motion."""
        from ..corpus.build import iter_clips
        from ..metrics import FGDExtractor, audio_onsets, diversity, evaluate_motion, fgd_from_embeddings

        assert isinstance(model, FGDNet)
        ex = FGDExtractor(model.eval(), "(in memory)", -1, "", next(model.parameters()).device)
        test_clips, onsets = [], []
        for clip in iter_clips(Path(self.config.corpus), "test"):
            test_clips.append((clip["rotations"], clip["root"]))
            if self.config.test_beats:
                onsets.append(audio_onsets(clip["audio"]))
        test_frames = sum(len(q) for q, _ in test_clips)
        e_test = ex.embed(test_clips)
        per_clip = [ex.embed([(q.numpy(), r.numpy())]) for q, r in (self.train_set.clip(k)
                                                                     for k in range(len(self.train_set)))]
        lengths = self.train_set.lengths
        e_train = np.concatenate(per_clip)
        vs_test, vs_train = [], []
        for trial in range(trials):
            order = np.random.default_rng(trial).permutation(len(per_clip))
            cut = np.cumsum(lengths[order])
            a = order[:int(np.searchsorted(cut, test_frames)) + 1]
            b = order[len(a):][:int(np.searchsorted(cut[len(a):] - cut[len(a) - 1], test_frames)) + 1]
            e_a = np.concatenate([per_clip[k] for k in a])
            vs_test.append(fgd_from_embeddings(e_a, e_test))
            if len(b) and cut[-1] - cut[len(a) - 1] >= test_frames:
                vs_train.append(fgd_from_embeddings(e_a, np.concatenate([per_clip[k] for k in b])))
        report = evaluate_motion(test_clips, onsets=onsets if self.config.test_beats else None)
        nan = float("nan")
        return {
            "fgd_train_vs_test": fgd_from_embeddings(e_train, e_test),
            "fgd_subset_vs_test_mean": float(np.mean(vs_test)), "fgd_subset_vs_test_std": float(np.std(vs_test)),
            "fgd_train_vs_train_mean": float(np.mean(vs_train)) if vs_train else nan,
            "fgd_train_vs_train_std": float(np.std(vs_train)) if vs_train else nan,
            "diversity_test": diversity(e_test), "diversity_train": diversity(e_train),
            "beat_alignment_test": report.get("beat_alignment", nan), "jerk_test": report["jerk"],
            "test_clips": len(test_clips), "test_windows": len(e_test), "train_windows": len(e_train),
            "test_hours": test_frames / FPS / 3600.0, "train_hours": self.train_set.hours,
        }


def make_task(**task_args: Any) -> FGDTask:
    return FGDTask(FGDTaskConfig(**task_args))


__all__ = ["FPS", "FGDConfig", "FGDNet", "FGDTask", "MotionSet", "make_task", "window_features"]
