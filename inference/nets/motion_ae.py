"""The motion latent autoencoder: one temporal convolutional autoencoder per body part (the 7 BODY_PARTS),
each with a residual vector quantizer (or a KL latent), downsampled 4x in time (30 fps -> 7.5 latent fps).

Per part the input is the 6D rotation (first two matrix columns, inference/rotations.py) of each of its
joints relative to the T-pose; lower_body also takes the root velocity (m/s, frame differences x fps). The
decoders give the same back; positions come from a differentiable forward kinematics on the canonical
skeleton (``fk_torch``), so the training losses see what the metric sees:

    rotation (L1 on 6D) + joint positions (L1, metres, every joint incl. fingers, root integrated from the
    decoded velocity) + velocity and acceleration (of 6D and positions) + the quantizer's commitment loss
    (or the KL term).

Residual VQ (Lee et al. 2022; Contextual Gesture's RVQ, MoMask): ``num_quantizers`` codebooks, each
quantizing what the previous ones left; EMA codebook updates (decay 0.99, Laplace-smoothed counts), codebooks
initialised from encoder outputs on the first batch, dead codes (recent use below ``restart_threshold`` of a
uniform share) restarted from random encoder outputs of the current batch, and quantizer dropout (a random number of
layers per batch, so the first layers carry the coarse motion). Under DistributedDataParallel the EMA
statistics are summed over ranks.

Latent layout for the generator: ``encode(sixd, root_vel)`` -> (B, T/4, 7, latent_dim) (continuous, the
quantized sum); ``decode(z)`` -> 6D (B, T, 52, 6) and root velocity (B, T, 3). Clip lengths are padded to a
multiple of 4 (edge frames repeated) by ``reconstruct``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..skeleton import BODY_PARTS, JOINT_INDEX, NUM_JOINTS, PARENTS, REST_OFFSETS

PARTS: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
PART_JOINTS: dict[str, tuple[int, ...]] = {p: tuple(JOINT_INDEX[n] for n in BODY_PARTS[p]) for p in PARTS}
ROOT_PART = "lower_body"
FPS = 30.0

# ---------------------------------------------------------------------------------------------------------
# Rotations and forward kinematics in torch (the numpy versions live in inference/)


def quat_to_matrix_torch(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    m = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_6d_torch(m: torch.Tensor) -> torch.Tensor:
    """The first two columns, as inference.rotations.matrix_to_6d."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def sixd_to_matrix_torch(d6: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt, as inference.rotations.sixd_to_matrix."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def _tree_levels() -> list[tuple[list[int], list[int]]]:
    depth = [0] * NUM_JOINTS
    for j, p in enumerate(PARENTS):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [([j for j in range(NUM_JOINTS) if depth[j] == d], [PARENTS[j] for j in range(NUM_JOINTS) if depth[j] == d])
            for d in range(1, max(depth) + 1)]


_LEVELS = _tree_levels()
_OFFSETS: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def fk_torch(rotmats: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Differentiable forward kinematics on the canonical skeleton: local rotation matrices (..., 52, 3, 3)
    relative to the T-pose and the pelvis position (..., 3) -> joint positions (..., 52, 3), metres.
    Same result as inference.skeleton.forward_kinematics."""
    key = (rotmats.device, rotmats.dtype)
    if key not in _OFFSETS:
        _OFFSETS[key] = torch.as_tensor(REST_OFFSETS, dtype=rotmats.dtype, device=rotmats.device)
    offsets = _OFFSETS[key]
    glob: list[Any] = [None] * NUM_JOINTS
    pos: list[Any] = [None] * NUM_JOINTS
    glob[0], pos[0] = rotmats[..., 0, :, :], root
    for js, ps in _LEVELS:
        gp = torch.stack([glob[p] for p in ps], dim=-3)
        pp = torch.stack([pos[p] for p in ps], dim=-2)
        gj = gp @ rotmats[..., js, :, :]
        pj = pp + (gp @ offsets[js].unsqueeze(-1)).squeeze(-1)
        for k, j in enumerate(js):
            glob[j], pos[j] = gj[..., k, :, :], pj[..., k, :]
    return torch.stack(pos, dim=-2)


def root_velocity(root: torch.Tensor, fps: float = FPS) -> torch.Tensor:
    """(..., T, 3) pelvis positions -> velocities in m/s, v[0] = 0, v[t] = (root[t] - root[t-1]) * fps."""
    v = torch.diff(root, dim=-2) * fps
    return torch.cat([torch.zeros_like(v[..., :1, :]), v], dim=-2)


def integrate_root(vel: torch.Tensor, root0: torch.Tensor, fps: float = FPS) -> torch.Tensor:
    """Inverse of root_velocity given the first position root0 (..., 3); vel[..., 0, :] is ignored."""
    steps = torch.cat([torch.zeros_like(vel[..., :1, :]), vel[..., 1:, :] / fps], dim=-2)
    return root0.unsqueeze(-2) + torch.cumsum(steps, dim=-2)


def motion_features(quats: torch.Tensor, root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quaternions (..., T, 52, 4) and root (..., T, 3) -> (6D (..., T, 52, 6), root velocity (..., T, 3),
    rotation matrices (..., T, 52, 3, 3))."""
    m = quat_to_matrix_torch(quats.float())
    return matrix_to_6d_torch(m), root_velocity(root.float()), m


def features_to_motion(sixd: np.ndarray, root_vel: np.ndarray, root0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoded features back to canonical motion: quaternions (T, 52, 4) and root (T, 3)."""
    from ...inference.rotations import quat_make_continuous, sixd_to_quat

    quats = quat_make_continuous(sixd_to_quat(np.asarray(sixd, dtype=np.float64)))
    root = integrate_root(torch.as_tensor(root_vel, dtype=torch.float64),
                          torch.as_tensor(root0, dtype=torch.float64)).numpy()
    return quats, root


# ---------------------------------------------------------------------------------------------------------
# Quantizers


class ResidualVQ(nn.Module):
    """Residual vector quantization with EMA codebooks and dead-code restarts. Input (N, dim).

    A code is restarted (from a random residual of the batch) when its recent use (average over ~10 batches
    of its share of the batch, times the codebook size) falls below ``restart_threshold``."""

    codebooks: torch.Tensor
    ema_count: torch.Tensor
    ema_sum: torch.Tensor
    usage: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, dim: int, codebook_size: int = 512, num_quantizers: int = 6, decay: float = 0.99,
                 restart_threshold: float = 0.1, dropout_prob: float = 0.2, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.size, self.num_quantizers = dim, codebook_size, num_quantizers
        self.decay, self.restart_threshold, self.dropout_prob, self.eps = decay, restart_threshold, dropout_prob, eps
        self.register_buffer("codebooks", torch.zeros(num_quantizers, codebook_size, dim))
        self.register_buffer("ema_count", torch.ones(num_quantizers, codebook_size))
        # Fast usage average (decay 0.9) of each code's share of the batch (x codebook size: 1 = uniform use),
        # for dead-code detection: a code used by nobody for ~25 batches is restarted.
        self.register_buffer("usage", torch.ones(num_quantizers, codebook_size))
        self.register_buffer("ema_sum", torch.zeros(num_quantizers, codebook_size, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.last_stats: dict[str, float] = {}

    @staticmethod
    def _nearest(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
        d = (x * x).sum(1, keepdim=True) - 2 * x @ book.t() + (book * book).sum(1)[None]
        return d.argmin(1)

    def _distributed(self) -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()

    @torch.no_grad()
    def _init_codebooks(self, z: torch.Tensor) -> None:
        residual = z.clone()
        for q in range(self.num_quantizers):
            idx = torch.randint(0, residual.shape[0], (self.size,), device=z.device)
            book = residual[idx] + 1e-3 * torch.randn_like(residual[idx]) * residual.std().clamp_min(1e-6)
            if self._distributed():
                torch.distributed.broadcast(book, 0)
            self.codebooks[q] = book
            self.ema_sum[q] = book
            self.ema_count[q] = 1.0
            self.usage[q] = 1.0
            residual = residual - book[self._nearest(residual, book)]
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, q: int, residual: torch.Tensor, codes: torch.Tensor) -> float:
        count = torch.bincount(codes, minlength=self.size).to(residual.dtype)
        total = torch.zeros(self.size, self.dim, dtype=residual.dtype, device=residual.device)
        total.index_add_(0, codes, residual)
        if self._distributed():
            torch.distributed.all_reduce(count)
            torch.distributed.all_reduce(total)
        self.ema_count[q].mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum[q].mul_(self.decay).add_(total, alpha=1 - self.decay)
        n = self.ema_count[q].sum()
        smoothed = (self.ema_count[q] + self.eps) / (n + self.size * self.eps) * n
        self.codebooks[q] = self.ema_sum[q] / smoothed[:, None]
        self.usage[q].mul_(0.9).add_(count * (self.size / count.sum().clamp_min(1.0)), alpha=0.1)
        dead = self.usage[q] < self.restart_threshold
        n_dead = int(dead.sum())
        if n_dead:
            idx = torch.randint(0, residual.shape[0], (n_dead,), device=residual.device)
            fresh = residual[idx]
            if self._distributed():
                torch.distributed.broadcast(fresh, 0)  # every rank restarts with the same vectors
            self.codebooks[q][dead] = fresh
            self.ema_sum[q][dead] = fresh
            self.ema_count[q][dead] = 1.0
            self.usage[q][dead] = 1.0
        return float(n_dead)

    def forward(self, z: torch.Tensor, n_layers: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (N, dim) -> (quantized with straight-through gradients (N, dim), codes (N, Q) long (-1 for layers
        dropped), commitment loss)."""
        if self.training and not bool(self.initialized):
            self._init_codebooks(z.detach())
        layers = self.num_quantizers if n_layers is None else n_layers
        if self.training and n_layers is None and self.dropout_prob > 0:
            if torch.rand(()) < self.dropout_prob:
                layers = int(torch.randint(1, self.num_quantizers + 1, ()))
            if self._distributed():  # every rank uses rank 0's choice
                t = torch.tensor([layers], device=z.device)
                torch.distributed.broadcast(t, 0)
                layers = int(t)
        residual = z.detach()
        quantized = torch.zeros_like(residual)
        codes = torch.full((z.shape[0], self.num_quantizers), -1, dtype=torch.long, device=z.device)
        dead = 0.0
        perplexity = 0.0
        for q in range(layers):
            c = self._nearest(residual, self.codebooks[q])
            if self.training:
                dead += self._ema_update(q, residual, c)
            chosen = self.codebooks[q][c]
            codes[:, q] = c
            quantized = quantized + chosen
            residual = residual - chosen
            if q == 0:
                p = torch.bincount(c, minlength=self.size).float() / c.numel()
                perplexity = float(torch.exp(-(p * (p + 1e-10).log()).sum()))
        commit = F.mse_loss(z, quantized)
        self.last_stats = {"dead_codes": dead, "perplexity0": perplexity}
        return z + (quantized - z).detach(), codes, commit

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (..., Q) (-1: layer unused) -> (..., dim)."""
        out = torch.zeros(codes.shape[:-1] + (self.dim,), device=self.codebooks.device)
        for q in range(codes.shape[-1]):
            c = codes[..., q]
            out = out + torch.where((c >= 0)[..., None], self.codebooks[q][c.clamp_min(0)], 0.0)
        return out


# ---------------------------------------------------------------------------------------------------------
# Networks


class ResBlock(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


def _stack(channels: int, depth: int) -> list[nn.Module]:
    return [ResBlock(channels, 3**i) for i in range(depth)]


class PartAE(nn.Module):
    """Temporal conv encoder / decoder for one body part; (B, T, in_dim) <-> (B, T / 2**down, latent_dim).

    Cheap on a CPU: the full-rate layers are narrow (channels / 2), the residual blocks (dilations 1, 3, 9, ...)
    run at the latent rate."""

    def __init__(self, in_dim: int, channels: int, latent_dim: int, down: int, depth: int, kl: bool) -> None:
        super().__init__()
        widths = [max(channels // 2 ** (down - k), 16) for k in range(down + 1)]  # full rate ... latent rate
        enc: list[nn.Module] = [nn.Conv1d(in_dim, widths[0], 3, padding=1)]
        for k in range(down):
            enc += [nn.SiLU(), nn.Conv1d(widths[k], widths[k + 1], 4, stride=2, padding=1)]
        enc += [*_stack(channels, depth), nn.SiLU(), nn.Conv1d(channels, latent_dim * (2 if kl else 1), 3, padding=1)]
        dec: list[nn.Module] = [nn.Conv1d(latent_dim, channels, 3, padding=1), *_stack(channels, depth)]
        for k in range(down, 0, -1):
            dec += [nn.SiLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(widths[k], widths[k - 1], 3, padding=1)]
        dec += [nn.SiLU(), nn.Conv1d(widths[0], in_dim, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.transpose(1, 2)).transpose(1, 2)


@dataclass
class MotionAEConfig:
    latent: str = "rvq"  # rvq | kl
    latent_dim: int = 32
    down: int = 2  # stride-2 stages: 2 -> 4x (30 fps -> 7.5 latent fps)
    depth: int = 3  # residual blocks at the latent rate (dilations 1, 3, 9)
    channels: dict[str, int] = field(default_factory=lambda: {
        "head": 64, "torso": 64, "left_arm": 128, "right_arm": 128, "left_hand": 128, "right_hand": 128,
        "lower_body": 64})
    codebook_size: int = 512
    num_quantizers: int = 6
    ema_decay: float = 0.99
    restart_threshold: float = 0.1  # a code whose recent use falls below this share of uniform use restarts
    quantizer_dropout: float = 0.2
    fps: float = FPS

    @property
    def factor(self) -> int:
        return 2**self.down


def part_in_dim(part: str) -> int:
    return 6 * len(PART_JOINTS[part]) + (3 if part == ROOT_PART else 0)


class MotionAE(nn.Module):
    """The per-body-part motion autoencoder (see the module docstring)."""

    def __init__(self, config: MotionAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MotionAEConfig()
        if config.latent not in ("rvq", "kl"):
            raise ValueError(f"latent must be 'rvq' or 'kl', got {config.latent!r}")
        kl = config.latent == "kl"
        self.parts = nn.ModuleDict({
            p: PartAE(part_in_dim(p), config.channels[p], config.latent_dim, config.down, config.depth, kl)
            for p in PARTS})
        self.quantizers = nn.ModuleDict({
            p: ResidualVQ(config.latent_dim, config.codebook_size, config.num_quantizers, config.ema_decay,
                          config.restart_threshold, config.quantizer_dropout) for p in PARTS}) if not kl else None
        # Input normalisation (from the training data; saved with the weights).
        for p in PARTS:
            self.register_buffer(f"mean_{p}", torch.zeros(part_in_dim(p)))
            self.register_buffer(f"std_{p}", torch.ones(part_in_dim(p)))
        self.last_stats: dict[str, float] = {}

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> MotionAE:
        return cls(MotionAEConfig(**d))

    def part_ae(self, part: str) -> PartAE:
        m = self.parts[part]
        assert isinstance(m, PartAE)
        return m

    def quantizer(self, part: str) -> ResidualVQ:
        assert self.quantizers is not None, "a KL model has no quantizers"
        m = self.quantizers[part]
        assert isinstance(m, ResidualVQ)
        return m

    def _stat(self, kind: str, part: str) -> torch.Tensor:
        t = getattr(self, f"{kind}_{part}")
        assert isinstance(t, torch.Tensor)
        return t

    @torch.no_grad()
    def set_normalization(self, sixd: torch.Tensor, root_vel: torch.Tensor, floor_6d: float = 0.05,
                          floor_root: float = 0.02) -> None:
        """Per-feature mean and std from sample frames: 6D (N, 52, 6), root velocity (N, 3) in m/s."""
        for p in PARTS:
            x = self._part_input(sixd, root_vel, p, normalize=False)
            mean, std = x.mean(0), x.std(0)
            floor = torch.full_like(std, floor_6d)
            if p == ROOT_PART:
                floor[-3:] = floor_root
            self._stat("mean", p).copy_(mean)
            self._stat("std", p).copy_(torch.maximum(std, floor))

    def _part_input(self, sixd: torch.Tensor, root_vel: torch.Tensor, part: str, normalize: bool = True
                    ) -> torch.Tensor:
        x = sixd[..., list(PART_JOINTS[part]), :].flatten(-2)
        if part == ROOT_PART:
            x = torch.cat([x, root_vel], dim=-1)
        if normalize:
            x = (x - self._stat("mean", part)) / self._stat("std", part)
        return x

    def encode(self, sixd: torch.Tensor, root_vel: torch.Tensor, sample: bool = False
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """6D (B, T, 52, 6) and root velocity (B, T, 3), T a multiple of 4 -> latents (B, T/4, 7, latent_dim)
        (the quantized sum for RVQ; the mean, or a sample with ``sample``, for KL), plus per-part extras:
        ``codes_<part>`` (B, T/4, Q) for RVQ, ``mu_<part>``/``logvar_<part>`` for KL, and ``loss_latent``."""
        if sixd.shape[1] % self.config.factor:
            raise ValueError(f"T={sixd.shape[1]} is not a multiple of {self.config.factor}; use reconstruct()")
        zs, extras = [], {}
        latent_loss = sixd.new_zeros(())
        stats: dict[str, float] = {}
        for p in PARTS:
            h = self.part_ae(p).encode(self._part_input(sixd, root_vel, p))
            b, t, _ = h.shape
            if self.quantizers is not None:
                zq, codes, commit = self.quantizers[p](h.reshape(b * t, -1))
                z = zq.reshape(b, t, -1)
                extras[f"codes_{p}"] = codes.reshape(b, t, -1)
                latent_loss = latent_loss + commit
                for k, v in self.quantizer(p).last_stats.items():
                    stats[k] = stats.get(k, 0.0) + v / len(PARTS)
            else:
                mu, logvar = h.chunk(2, dim=-1)
                logvar = logvar.clamp(-10.0, 10.0)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
                extras[f"mu_{p}"], extras[f"logvar_{p}"] = mu, logvar
                latent_loss = latent_loss + 0.5 * torch.mean(mu**2 + logvar.exp() - 1.0 - logvar)
            zs.append(z)
        extras["loss_latent"] = latent_loss / len(PARTS)
        self.last_stats = stats
        return torch.stack(zs, dim=2), extras

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (B, T', 7, latent_dim) -> 6D (B, T'*4, 52, 6) and root velocity (B, T'*4, 3)."""
        b, t = z.shape[:2]
        sixd = z.new_zeros(b, t * self.config.factor, NUM_JOINTS, 6)
        root_vel = z.new_zeros(b, t * self.config.factor, 3)
        for k, p in enumerate(PARTS):
            x = self.part_ae(p).decode(z[:, :, k]) * self._stat("std", p) + self._stat("mean", p)
            joints = list(PART_JOINTS[p])
            sixd[:, :, joints] = x[..., :6 * len(joints)].reshape(b, -1, len(joints), 6)
            if p == ROOT_PART:
                root_vel = x[..., -3:]
        return sixd, root_vel

    def decode_codes(self, codes: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """RVQ token ids per part, (B, T', Q) each -> 6D and root velocity."""
        if self.quantizers is None:
            raise ValueError("a KL model has no codes")
        z = torch.stack([self.quantizer(p).decode_codes(codes[p]) for p in PARTS], dim=2)
        return self.decode(z)

    def forward(self, sixd: torch.Tensor, root_vel: torch.Tensor) -> dict[str, torch.Tensor]:
        z, extras = self.encode(sixd, root_vel, sample=self.training)
        rec_6d, rec_vel = self.decode(z)
        return {"sixd": rec_6d, "root_vel": rec_vel, "z": z, **extras}

    @torch.no_grad()
    def reconstruct(self, quats: torch.Tensor, root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole clips through the autoencoder: quaternions (B, T, 52, 4), root (B, T, 3), any T ->
        (6D (B, T, 52, 6), rotation matrices (B, T, 52, 3, 3), root (B, T, 3), the first frame's root kept)."""
        sixd, vel, _ = motion_features(quats, root)
        t = sixd.shape[1]
        pad = (-t) % self.config.factor
        if pad:
            sixd = torch.cat([sixd, sixd[:, -1:].expand(-1, pad, -1, -1)], dim=1)
            vel = torch.cat([vel, torch.zeros_like(vel[:, :1]).expand(-1, pad, -1)], dim=1)
        out = self(sixd, vel)
        rec6, recv = out["sixd"][:, :t], out["root_vel"][:, :t]
        return rec6, sixd_to_matrix_torch(rec6), integrate_root(recv, root[:, 0].float(), self.config.fps)
