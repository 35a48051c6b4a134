"""The GestureDiffuCLIP denoiser: a transformer over motion latents, one token per latent frame.

The token's channels are grouped by body part (``group`` channels per part, 7 parts): each part's latent
enters its own channel group, each part's output is read from its own group, and the AdaIN of every block
modulates each group with that part's style code. Attention and MLPs mix the groups (coordination between
parts). Inputs per latent frame t (7.5 per second) and part p:
- the noisy latent x_t,p (the motion autoencoder's 32-d latent of that part), the known-frame value and its
  mask (continuation, pinned poses, range regeneration: trained with random masks);
- the audio of the 4 motion frames the latent frame covers (log-mel, onset, energy, pitch, voicing), through a
  bidirectional temporal convolution stack (about +-0.8 s: a gesture prepares before the stressed syllable);
- the part's style code s_p (a unit vector of the style space, inference/nets/style_encoder.py), injected by
  AdaIN: every normalisation in the block is a LayerNorm whose scale and shift come from s_p and the noise
  level (the per-part AdaIN of GestureDiffuCLIP);
- the transcript: semantics-aware cross-attention from each token to the gesture-transcript embedding of the
  words around it (inference/nets/text_gesture.py, one 4-second window per latent frame), within a band of
  +-``cross_band`` latent frames.

Each block: causal temporal self-attention (a token sees the last ``lookback`` latent frames: rotary
positions, so any length works and windows continue seamlessly), transcript cross-attention, and an MLP.
The model gives the clean latent x0 (inference/nets/sampling.py turns that into DDPM / DDIM /
DPM-Solver++ steps). With ``prediction="v"`` the network's output F is a v-prediction and x0 = alpha_t x_t -
sigma_t F: at low noise x0 is then x_t plus a small correction, where a network that outputs x0 directly has to
copy its input through every layer and leaves an error floor that shows as jitter in the motion (the shipped
model of an earlier version measured an x0 error of 0.11 standard deviations at sigma 0.01, against 0.009 for
x_t itself). ``prediction="x0"`` is the direct parameterisation of older model folders.

Classifier-free guidance: the audio, the transcript and the style of each part are dropped independently in
training (learned null embeddings), so guidance can be applied per part (the UI's style-strength sliders).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PARTS: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")


@dataclass
class DenoiserConfig:
    parts: int = 7
    latent_dim: int = 32
    audio_dim: int = 68  # per motion frame (inference/conditioning.py AUDIO_DIM)
    frames_per_latent: int = 4
    text_dim: int = 128  # gesture-transcript embedding size
    style_dim: int = 64
    group: int = 32  # channels per part: d_model = parts * group
    heads: int = 4
    layers: int = 4
    ff: int = 512
    dropout: float = 0.1
    lookback: int = 40  # latent frames a token attends back to (its own included)
    cross_band: int = 8  # transcript latent frames either side a token attends to
    audio_layers: int = 3
    diffusion_steps: int = 1000  # the discrete training schedule (cosine)
    prediction: str = "x0"  # the network's output: "x0" (older models) or "v" (x0 = alpha x_t - sigma F)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DenoiserConfig:
        config = cls(**d)
        if config.prediction not in ("x0", "v"):
            raise ValueError(f"unknown prediction {config.prediction!r}: 'x0' or 'v'")
        return config

    @property
    def d_model(self) -> int:
        return self.parts * self.group


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of (fractional) diffusion steps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rotary(x: Tensor, positions: Tensor) -> Tensor:
    """Rotary position embedding over the last dim of x (..., T, hd) for integer positions (T,)."""
    hd = x.shape[-1]
    half = hd // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = positions.float()[:, None] * freqs[None]  # (T, half)
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def band_mask(t_q: int, t_k: int, before: int, after: int, device: torch.device) -> Tensor:
    """Boolean (t_q, t_k): query i may attend key j when i - before <= j <= i + after."""
    i = torch.arange(t_q, device=device)[:, None]
    j = torch.arange(t_k, device=device)[None]
    return (j >= i - before) & (j <= i + after)


class AdaNorm(nn.Module):
    """LayerNorm whose scale and shift come per channel group from that part's conditioning (AdaIN per part).
    cond: (B, P, d_cond) -> modulation of the (B, T, P * group) channels."""

    def __init__(self, d: int, parts: int, d_cond: int) -> None:
        super().__init__()
        self.parts = parts
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.mod = nn.Linear(d_cond, 2 * (d // parts))
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.mod(cond).chunk(2, dim=-1)  # (B, P, group) each
        b = x.shape[0]
        return self.norm(x) * (1 + scale.reshape(b, 1, -1)) + shift.reshape(b, 1, -1)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(kv_dim or d, 2 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, kv: Tensor, mask: Tensor | None = None, positions: Tensor | None = None,
                kv_positions: Tensor | None = None) -> Tensor:
        n, tq, d = x.shape
        h = self.heads
        q = self.q(x).reshape(n, tq, h, d // h).transpose(1, 2)
        k, v = self.kv(kv).reshape(n, kv.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        if positions is not None:
            q = rotary(q, positions)
            k = rotary(k, positions if kv_positions is None else kv_positions)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(n, tq, d))


class Block(nn.Module):
    def __init__(self, c: DenoiserConfig) -> None:
        super().__init__()
        d, p, dc = c.d_model, c.parts, c.d_model
        self.norm_time, self.attn_time = AdaNorm(d, p, dc), Attention(d, c.heads, c.dropout)
        self.norm_text, self.attn_text = AdaNorm(d, p, dc), Attention(d, c.heads, c.dropout)
        self.norm_ff = AdaNorm(d, p, dc)
        self.ff = nn.Sequential(nn.Linear(d, c.ff), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.ff, d))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, cond: Tensor, text: Tensor, time_mask: Tensor, text_mask: Tensor,
                positions: Tensor) -> Tensor:
        """x (B, T, d); cond (B, P, d); text (B, T, d)."""
        h = self.norm_time(x, cond)
        x = x + self.drop(self.attn_time(h, h, time_mask, positions))
        h = self.norm_text(x, cond)
        x = x + self.drop(self.attn_text(h, text, text_mask))
        return x + self.drop(self.ff(self.norm_ff(x, cond)))


class GestureDenoiser(nn.Module):
    """x0-prediction denoiser; see the module docstring."""

    latent_mean: Tensor
    latent_std: Tensor
    audio_mean: Tensor
    audio_std: Tensor

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        from .sampling import cosine_alphas_cumprod

        self.config = c = config or DenoiserConfig()
        d, p = c.d_model, c.parts
        # The training schedule for the v-parameterisation: a plain float64 tensor, not a buffer, so neither the
        # checkpoint nor .half() touches it (half precision cannot tell sigma at low noise apart).
        self.alphas_cumprod = cosine_alphas_cumprod(c.diffusion_steps)
        self.register_buffer("latent_mean", torch.zeros(p, c.latent_dim))
        self.register_buffer("latent_std", torch.ones(p, c.latent_dim))
        self.register_buffer("audio_mean", torch.zeros(c.audio_dim))
        self.register_buffer("audio_std", torch.ones(c.audio_dim))
        g = c.group
        # Per-part input projection of [noisy latent, known latent, known mask] into the part's channel group.
        self.inp = nn.Parameter(torch.randn(p, 2 * c.latent_dim + 1, g) / math.sqrt(2 * c.latent_dim + 1))
        self.inp_bias = nn.Parameter(torch.zeros(p, g))
        self.part_emb = nn.Parameter(torch.randn(p, d) * 0.02)  # in the per-part conditioning
        # Audio: 4 frames per latent frame, then bidirectional dilated convolutions.
        self.audio_in = nn.Linear(c.frames_per_latent * c.audio_dim, d)
        self.audio_convs = nn.ModuleList(
            [nn.Conv1d(d, d, 5, padding=2 * (2**k), dilation=2**k) for k in range(c.audio_layers)])
        self.audio_null = nn.Parameter(torch.zeros(d))
        self.text_in = nn.Linear(c.text_dim, d)
        self.text_null = nn.Parameter(torch.zeros(d))
        self.style_in = nn.Linear(c.style_dim, d)
        self.style_null = nn.Parameter(torch.randn(p, d) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.norm_out = AdaNorm(d, p, d)
        self.out = nn.Parameter(torch.zeros(p, g, c.latent_dim))
        self.out_bias = nn.Parameter(torch.zeros(p, c.latent_dim))

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> GestureDenoiser:
        return cls(DenoiserConfig.from_dict(d))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    # -- normalisation helpers (latents are diffused in normalised units)
    def normalize(self, z: Tensor) -> Tensor:
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.latent_std + self.latent_mean

    def encode_conditions(self, audio: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """Audio (B, 4T, audio_dim) raw features, text (B, T, text_dim) -> (B, T, d) each. Computed once per
        sampling run: they do not depend on the noise."""
        c = self.config
        b, f, _ = audio.shape
        t = f // c.frames_per_latent
        a = ((audio[:, : t * c.frames_per_latent] - self.audio_mean) / self.audio_std)
        h = self.audio_in(a.reshape(b, t, -1)).transpose(1, 2)
        for conv in self.audio_convs:
            h = h + F.gelu(conv(h))
        return h.transpose(1, 2), self.text_in(text)

    def forward(self, x: Tensor, steps: Tensor, audio_h: Tensor, text_h: Tensor, style: Tensor,
                known: Tensor, known_mask: Tensor, *, drop_audio: Tensor | None = None,
                drop_text: Tensor | None = None, drop_style: Tensor | None = None,
                positions: Tensor | None = None) -> Tensor:
        """Noisy normalised latents x (B, T, P, D) at diffusion steps (B,) -> predicted clean latents (normalised).

        audio_h, text_h: (B, T, d) from encode_conditions; style (B, P, style_dim) unit codes; known
        (B, T, P, D) normalised latents where known_mask (B, T, P) is 1; drop_* are 0/1 masks for
        classifier-free guidance: audio and text (B,), style (B, P) (1 = replaced by the learned null)."""
        c = self.config
        b, t, p, _ = x.shape
        inp = torch.cat([x, known * known_mask[..., None], known_mask[..., None]], dim=-1)
        h = (torch.einsum("btpi,pig->btpg", inp, self.inp) + self.inp_bias).reshape(b, t, p * c.group)
        if drop_audio is not None:
            audio_h = torch.where(drop_audio[:, None, None] > 0, self.audio_null.expand_as(audio_h), audio_h)
        if drop_text is not None:
            text_h = torch.where(drop_text[:, None, None] > 0, self.text_null.expand_as(text_h), text_h)
        h = h + audio_h
        s = self.style_in(style)  # (B, P, d)
        if drop_style is not None:
            s = torch.where(drop_style[..., None] > 0, self.style_null.expand(b, p, -1), s)
        temb = self.time_mlp(timestep_embedding(steps, c.d_model))  # (B, d)
        cond = s + temb[:, None] + self.part_emb  # (B, P, d): the per-part AdaIN input
        if positions is None:
            positions = torch.arange(t, device=x.device)
        time_mask = band_mask(t, t, c.lookback - 1, 0, x.device)
        text_mask = band_mask(t, t, c.cross_band, c.cross_band, x.device)
        for block in self.blocks:
            h = block(h, cond, text_h, time_mask, text_mask, positions)
        h = self.norm_out(h, cond).reshape(b, t, p, c.group)
        out = torch.einsum("btpg,pgo->btpo", h, self.out) + self.out_bias
        if c.prediction == "v":
            abar = self.alphas_cumprod[steps.long().clamp(0, c.diffusion_steps - 1).cpu()]
            alpha = abar.sqrt().to(x.device, x.dtype).reshape(-1, 1, 1, 1)
            sigma = (1 - abar).sqrt().to(x.device, x.dtype).reshape(-1, 1, 1, 1)
            out = alpha * x - sigma * out
        return out
