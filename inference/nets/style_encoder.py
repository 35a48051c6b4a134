"""The motion style encoder: example motion in, one style code per body part out.

It anchors the style space S (ARCHITECTURE.md "Style space"): every other way of stating a style (a text
prompt through a backbone and an adapter, an example clip) ends up as a (7 parts, dim) array of unit vectors
in this space, and the generator is conditioned on it per part (AdaIN).

The encoder reads the motion autoencoder's latents (7.5 latent frames per second), so an example motion is
first encoded by the autoencoder. Each part has its own dilated temporal convolutions (grouped: the parts do
not see each other, which keeps the per-part codes about their own part) and mean + standard-deviation
pooling over time, so any length of two seconds or more gives a code. It is trained as a cosine classifier
of each part's style label on the procedural corpus (training/models/style_encoder.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class StyleEncoderConfig:
    parts: int = 7
    latent_dim: int = 32
    channels: int = 96  # per part
    dim: int = 64  # style code size per part
    num_styles: int = 25  # classifier classes (training only; kept so the checkpoint rebuilds)
    scale: float = 16.0  # cosine-classifier logit scale

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StyleEncoderConfig:
        return cls(**d)


class StyleEncoder(nn.Module):
    latent_mean: Tensor
    latent_std: Tensor

    def __init__(self, config: StyleEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or StyleEncoderConfig()
        p, ch = c.parts, c.channels
        self.register_buffer("latent_mean", torch.zeros(p, c.latent_dim))
        self.register_buffer("latent_std", torch.ones(p, c.latent_dim))
        self.convs = nn.ModuleList([
            nn.Conv1d(p * c.latent_dim, p * ch, 3, padding=1, groups=p),
            nn.Conv1d(p * ch, p * ch, 3, padding=2, dilation=2, groups=p),
            nn.Conv1d(p * ch, p * ch, 3, padding=4, dilation=4, groups=p),
        ])
        self.proj = nn.Conv1d(p * 2 * ch, p * c.dim, 1, groups=p)  # per-part linear on pooled features
        self.classes = nn.Parameter(torch.randn(p, c.num_styles, c.dim) * 0.1)

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> StyleEncoder:
        return cls(StyleEncoderConfig.from_dict(d))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def forward(self, latents: Tensor) -> Tensor:
        """Latents (B, T', P, latent_dim) -> unit style codes (B, P, dim)."""
        b, t, p, d = latents.shape
        x = (latents - self.latent_mean) / self.latent_std
        h = x.permute(0, 2, 3, 1).reshape(b, p * d, t)
        for k, conv in enumerate(self.convs):
            y = F.gelu(conv(h))
            h = y if k == 0 else h + y
        ch = self.config.channels
        h = h.reshape(b, p, ch, t)
        pooled = torch.cat([h.mean(-1), h.std(-1, unbiased=False)], dim=-1)  # (B, P, 2ch)
        codes = self.proj(pooled.reshape(b, p * 2 * ch, 1)).reshape(b, p, self.config.dim)
        return F.normalize(codes, dim=-1)

    def logits(self, codes: Tensor) -> Tensor:
        """Unit codes (B, P, dim) -> per-part style logits (B, P, num_styles)."""
        classes = F.normalize(self.classes, dim=-1)
        return self.config.scale * torch.einsum("bpd,psd->bps", codes, classes)
