"""The motion autoencoder's data and training task; the model itself lives in inference/nets/motion_ae.py
(the add-on decodes with it, and the add-on does not ship training/)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...inference.nets.motion_ae import (  # noqa: F401  (re-exported: checkpoints name these classes here)
    FPS,
    PART_JOINTS,
    PARTS,
    ROOT_PART,
    MotionAE,
    MotionAEConfig,
    PartAE,
    ResidualVQ,
    features_to_motion,
    fk_torch,
    integrate_root,
    matrix_to_6d_torch,
    motion_features,
    quat_to_matrix_torch,
    root_velocity,
    sixd_to_matrix_torch,
)
from ...inference.skeleton import NUM_JOINTS

# ---------------------------------------------------------------------------------------------------------
# Data and the training task


@dataclass
class MotionSet:
    """Clips of one split in memory: quaternions and roots concatenated, with clip offsets."""

    quats: torch.Tensor  # (N, 52, 4) float32
    root: torch.Tensor  # (N, 3) float32
    offsets: np.ndarray  # (clips + 1,) int64
    ids: list[int] = field(default_factory=list)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def clip(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.quats[a:b], self.root[a:b]

    @property
    def hours(self) -> float:
        return float(self.offsets[-1]) / FPS / 3600.0

    def windows(self, rng: np.random.Generator, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows (batch, length, 52, 4) and (batch, length, 3), clips drawn in proportion to length."""
        lengths = self.lengths
        ok = np.flatnonzero(lengths >= length)
        if len(ok) == 0:
            raise ValueError(f"no clip of {length} frames or more")
        p = (lengths[ok] - length + 1).astype(np.float64)
        clips = ok[rng.choice(len(ok), size=batch, p=p / p.sum())]
        starts = self.offsets[clips] + (rng.random(batch) * (lengths[clips] - length + 1)).astype(np.int64)
        idx = torch.as_tensor(starts[:, None] + np.arange(length)[None], dtype=torch.long)
        return self.quats[idx], self.root[idx]


def load_motion(corpus: str | Path, split: str, max_hours: float = 0.0, max_clips: int = 0) -> MotionSet:
    """Motion of one corpus split (training/corpus/build.py's iter_clips), optionally only the first hours."""
    from ..corpus.build import iter_clips

    quats, roots, offsets, ids = [], [], [0], []
    for clip in iter_clips(Path(corpus), split):
        quats.append(np.asarray(clip["rotations"], dtype=np.float32))
        roots.append(np.asarray(clip["root"], dtype=np.float32))
        offsets.append(offsets[-1] + len(quats[-1]))
        ids.append(int(clip["index"]))
        if (max_hours and offsets[-1] / FPS / 3600.0 >= max_hours) or (max_clips and len(ids) >= max_clips):
            break
    if not ids:
        raise ValueError(f"corpus {corpus} has no clips in split {split!r}")
    return MotionSet(torch.from_numpy(np.concatenate(quats)), torch.from_numpy(np.concatenate(roots)),
                     np.asarray(offsets, dtype=np.int64), ids)


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


@dataclass
class MotionAETaskConfig:
    corpus: str = "data/corpus"
    train_hours: float = 0.0  # 0: the whole train split
    val_clips: int = 40  # validation clips evaluated during training (0: all)
    window: int = 64
    batch_size: int = 32
    w_rot: float = 1.0
    w_pos: float = 4.0
    w_vel: float = 2.0
    w_acc: float = 2.0
    w_latent: float = 0.02  # commitment (RVQ) or KL weight
    model: dict[str, Any] = field(default_factory=dict)  # MotionAEConfig overrides


def mpjpe_by_part(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sum over frames of the per-joint position error per part and over all joints (metres), for averaging."""
    err = (pred - target).norm(dim=-1)  # (..., 52)
    err = err.reshape(-1, NUM_JOINTS)
    out = {p: err[:, list(PART_JOINTS[p])].mean(1).sum() for p in PARTS}
    out["all"] = err.mean(1).sum()
    return out


@torch.no_grad()
def evaluate_reconstruction(model: MotionAE, data: MotionSet, max_clips: int = 0) -> dict[str, float]:
    """MPJPE in cm over every frame of whole clips, per body part and over all 52 joints (fingers included);
    the root is integrated from the decoded velocity starting at the clip's first frame. Also the mean 6D error
    and the geodesic angle error (degrees)."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    frames = 0
    angle = 0.0
    n = len(data) if not max_clips else min(max_clips, len(data))
    for k in range(n):
        q, r = data.clip(k)
        q, r = q[None].to(device), r[None].to(device)
        _, rec_m, rec_root = model.reconstruct(q, r)
        gt_m = quat_to_matrix_torch(q.float())
        pred_pos, gt_pos = fk_torch(rec_m, rec_root), fk_torch(gt_m, r.float())
        for key, v in mpjpe_by_part(pred_pos, gt_pos).items():
            sums[key] = sums.get(key, 0.0) + float(v)
        rel = gt_m.transpose(-1, -2) @ rec_m
        cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
        angle += float(torch.rad2deg(torch.acos(cos)).mean(-1).sum())
        frames += q.shape[1]
    out = {"mpjpe_cm": 100.0 * sums["all"] / frames}
    out.update({f"mpjpe_{p}_cm": 100.0 * sums[p] / frames for p in PARTS})
    out["angle_deg"] = angle / frames
    return out


class MotionAETask:
    """Trains MotionAE on the corpus (see training/trainer.py's Task)."""

    name = "motion_ae"

    def __init__(self, config: MotionAETaskConfig) -> None:
        self.config = config
        self.model_config = MotionAEConfig(**config.model)
        if config.window % self.model_config.factor:
            raise ValueError(f"window {config.window} must be a multiple of {self.model_config.factor}")
        self.train_set = load_motion(config.corpus, "train", config.train_hours)
        self.val_set = load_motion(config.corpus, "val", max_clips=config.val_clips)
        self._test_set: MotionSet | None = None

    def build_model(self) -> MotionAE:
        model = MotionAE(self.model_config)
        # Normalisation statistics from (up to) 200k frames of the training split.
        g = torch.Generator().manual_seed(0)
        n = self.train_set.quats.shape[0]
        idx = torch.randperm(n, generator=g)[:200_000]
        sixd = matrix_to_6d_torch(quat_to_matrix_torch(self.train_set.quats[idx]))
        vel = root_velocity(self.train_set.root[None])[0][idx]
        model.set_normalization(sixd, vel)
        return model

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            q, r = self.train_set.windows(rng, self.config.batch_size, self.config.window)
            yield {"quats": q, "root": r}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        sixd, vel, mats = motion_features(batch["quats"], batch["root"])
        root = batch["root"].float()
        out = model(sixd, vel)
        rec6, recv = out["sixd"], out["root_vel"]
        rec_root = integrate_root(recv, root[:, 0])
        with torch.no_grad():
            gt_pos = fk_torch(mats, root)
        pos = fk_torch(sixd_to_matrix_torch(rec6), rec_root)
        l_rot = _l1(rec6, sixd) + _l1(recv, vel)
        l_pos = _l1(pos, gt_pos)
        l_vel = _l1(torch.diff(rec6, dim=1), torch.diff(sixd, dim=1)) + _l1(torch.diff(pos, dim=1),
                                                                             torch.diff(gt_pos, dim=1)) * FPS / 10
        l_acc = (_l1(torch.diff(rec6, 2, dim=1), torch.diff(sixd, 2, dim=1))
                 + _l1(torch.diff(pos, 2, dim=1), torch.diff(gt_pos, 2, dim=1)) * FPS / 10)
        l_lat = out["loss_latent"]
        total = c.w_rot * l_rot + c.w_pos * l_pos + c.w_vel * l_vel + c.w_acc * l_acc + c.w_latent * l_lat
        with torch.no_grad():
            mpjpe = float((pos - gt_pos).norm(dim=-1).mean()) * 100.0
        from ..checkpoint import unwrap

        stats = getattr(unwrap(model), "last_stats", {})
        terms = {"rot": l_rot, "pos": l_pos, "vel": l_vel, "acc": l_acc, "latent": l_lat}
        return total, {**{k: float(v.detach()) for k, v in terms.items()}, "mpjpe_cm": mpjpe, **stats}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        assert isinstance(model, MotionAE)
        return evaluate_reconstruction(model, self.val_set)

    def test(self, model: nn.Module) -> dict[str, float]:
        """MPJPE on the whole test split."""
        assert isinstance(model, MotionAE)
        if self._test_set is None:
            self._test_set = load_motion(self.config.corpus, "test")
        return evaluate_reconstruction(model, self._test_set)


def make_task(**task_args: Any) -> MotionAETask:
    return MotionAETask(MotionAETaskConfig(**task_args))
