"""Training task for the GestureDiffuCLIP denoiser (inference/nets/gesture_diffusion.py).

Batches are random windows of ``window`` latent frames from the prepared corpus (training/data/latent_set.py):
clean latents (normalised), the audio of their frames, the frame-aligned gesture-transcript embedding
(precomputed once per split: inference/conditioning.py transcript_features) and style codes from the frozen
motion style encoder on ANOTHER random window of the same clip (so the code carries the clip's style, not its
content); with probability ``target_style_p`` the style is instead the style space's per-style target code
(what a text prompt maps to), so prompts land in familiar territory.

Per sample: a diffusion step uniform over the schedule, a known-frame mask (none; a prefix: continuation of the
previous window; a few single frames: pinned poses; everything outside a range: range regeneration), and
independent condition dropout for classifier-free guidance (audio, transcript, the whole style, and each
part's style). Loss: MSE on the clean latents of the unknown frames plus a velocity term, measured on x0 or (for a
v-parameterised model, ``loss_space="v"``) on the v-prediction.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...inference.nets.gesture_diffusion import DenoiserConfig, GestureDenoiser
from ...inference.nets.sampling import Schedule
from ...inference.nets.style_encoder import StyleEncoder
from ...inference.skeleton import BODY_PARTS
from ..checkpoint import unwrap
from ..data.latent_set import LatentSet, latent_set, latent_windows

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass
class DiffusionTaskConfig:
    corpus: str = "data/corpus"
    ae_dir: str = str(WEIGHTS / "motion_ae")
    tg_dir: str = str(WEIGHTS / "text_gesture")
    style_dir: str = str(WEIGHTS / "style_encoder")  # checkpoint folder; its style_space.* next to it
    cache_dir: str = ".cache/latents"
    window: int = 40  # latent frames (5.3 s)
    batch_size: int = 32
    max_clips: int = 0
    target_style_p: float = 0.3
    p_drop_audio: float = 0.1
    p_drop_text: float = 0.15
    p_drop_style: float = 0.1
    p_drop_part_style: float = 0.1
    p_known: float = 0.5  # share of samples with some known frames
    velocity_weight: float = 1.0
    # The space the squared errors are measured in: "x0" (the clean latents, every noise level alike) or "v" (the
    # v-prediction's, i.e. x0 errors / sigma: the standard loss of a v-parameterised model; an x0-weighted loss
    # leaves its middle noise levels under-trained, and their errors are high-frequency: jitter).
    loss_space: str = "x0"
    # Style consistency (a fine-tune, docs/DIFFUSION.md): the frozen motion style encoder, applied to the
    # predicted clean latents, should name each conditioned part's style (its cosine-classifier cross-entropy,
    # every noise level alike). The reconstruction loss alone lets the denoiser average out style-specific dynamics
    # (stroke rate, holds, sway) where it has to invent motion, at high noise. 0 turns it off.
    style_loss_weight: float = 0.0
    style_loss_parts: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand")
    # Start from these denoiser weights (a checkpoint folder: its model.safetensors) instead of at random:
    # fine-tuning a trained model with another loss.
    init_from: str = ""
    eval_clips: int = 48
    workers: int = 2
    model: dict[str, Any] = field(default_factory=dict)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _text_job(args: tuple[str, np.ndarray, np.ndarray, int]) -> np.ndarray:
    from ...inference.conditioning import transcript_features
    from ...inference.nets.loading import load_text_gesture

    torch.set_num_threads(1)
    tg_dir, tokens, onsets, n_latent = args
    if tg_dir not in _TG_MODELS:  # once per pool process
        _TG_MODELS[tg_dir] = load_text_gesture(tg_dir)
    return transcript_features(_TG_MODELS[tg_dir], tokens, onsets, n_latent)


_TG_MODELS: dict[str, Any] = {}


def split_text_features(data: LatentSet, tg_dir: str, cache_dir: str, tag: str, workers: int = 2) -> np.ndarray:
    """(latent frames of the split, 128) transcript features, cached next to the prepared split."""
    from ...inference.conditioning import CONDITIONING_VERSION

    key = hashlib.sha256(json.dumps([tag, _sha(Path(tg_dir) / "model.safetensors"), CONDITIONING_VERSION,
                                     len(data), int(data.latent_offsets[-1])]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"text-{key}.npy"
    if path.exists():
        return np.load(path)
    jobs = []
    for k in range(len(data)):
        clip = data.clip(k)
        jobs.append((tg_dir, clip["tokens"], clip["onsets"], len(clip["latents"])))
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            feats = pool.map(_text_job, jobs, chunksize=8)
    else:
        feats = [_text_job(j) for j in jobs]
    out = np.concatenate(feats).astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def load_style_space(style_dir: str | Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(Path(style_dir) / "style_space.safetensors"))["codes"]


def known_masks(rng: np.random.Generator, batch: int, t: int, p_known: float) -> np.ndarray:
    """(batch, t) 0/1: which latent frames are given (the same for every part)."""
    mask = np.zeros((batch, t), np.float32)
    for b in range(batch):
        if rng.random() >= p_known:
            continue
        kind = rng.integers(3)
        if kind == 0:  # continuation: the previous window's last frames
            mask[b, : rng.integers(1, max(2, t // 3))] = 1
        elif kind == 1:  # pinned poses
            mask[b, rng.choice(t, size=rng.integers(1, 4), replace=False)] = 1
        else:  # regenerate a range: everything outside it is known
            a = rng.integers(0, t - 4)
            e = rng.integers(a + 4, t + 1)
            mask[b] = 1
            mask[b, a:e] = 0
    return mask


class DiffusionTask:
    name = "gesture_diffusion"

    def __init__(self, config: DiffusionTaskConfig) -> None:
        from ...inference.nets.loading import load_module

        self.config = c = config
        if c.loss_space not in ("x0", "v"):
            raise ValueError(f"loss_space must be 'x0' or 'v', not {c.loss_space!r}")
        self.train_data = latent_set(c.corpus, "train", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        self.val_data = latent_set(c.corpus, "val", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        self.train_text = split_text_features(self.train_data, c.tg_dir, c.cache_dir, "train", c.workers)
        self.val_text = split_text_features(self.val_data, c.tg_dir, c.cache_dir, "val", c.workers)
        style = load_module(c.style_dir, "StyleEncoder")
        assert isinstance(style, StyleEncoder)
        self.style_encoder = style.eval().requires_grad_(False)
        self.style_targets = load_style_space(c.style_dir)
        self.schedule = Schedule(DenoiserConfig(**c.model).diffusion_steps)
        self._train_codes = self._clip_window_codes(self.train_data)
        self._val_codes = self._clip_window_codes(self.val_data, seed=1)
        self._val_batches: list[dict[str, torch.Tensor]] | None = None

    def build_model(self) -> GestureDenoiser:
        model = GestureDenoiser(DenoiserConfig(**self.config.model))
        z = torch.from_numpy(self.train_data.latents)
        model.latent_mean.copy_(z.mean(0))
        model.latent_std.copy_(z.std(0).clamp_min(1e-3))
        rng = np.random.default_rng(0)
        idx = rng.choice(len(self.train_data.audio), size=min(200_000, len(self.train_data.audio)), replace=False)
        a = torch.from_numpy(self.train_data.audio[np.sort(idx)].astype(np.float32))
        model.audio_mean.copy_(a.mean(0))
        model.audio_std.copy_(a.std(0).clamp_min(1e-2))
        if self.config.init_from:
            from safetensors.torch import load_file

            state = load_file(str(Path(self.config.init_from) / "model.safetensors"))
            model.load_state_dict(state)  # strict: another architecture is an error, not a partial load
        return model

    @torch.no_grad()
    def _clip_window_codes(self, data: LatentSet, per_clip: int = 4, seed: int = 0) -> torch.Tensor:
        """(clips, per_clip, P, dim): style codes of random 2-6.4 s windows of every clip, computed once (the
        frozen encoder is the slowest part of a batch otherwise)."""
        rng = np.random.default_rng(seed)
        out = torch.zeros(len(data), per_clip, 7, self.style_targets.shape[-1])
        lengths = data.latent_lengths
        for k in range(per_clip):
            length = int(rng.integers(16, 49))
            for a in range(0, len(data), 256):
                clips = np.arange(a, min(a + 256, len(data)))
                starts = (rng.random(len(clips)) * np.maximum(lengths[clips] - length + 1, 1)).astype(np.int64)
                idx = data.latent_offsets[clips][:, None] + np.minimum(
                    starts[:, None] + np.arange(length)[None], lengths[clips][:, None] - 1)
                out[clips, k] = self.style_encoder(torch.from_numpy(data.latents[idx]))
        return out

    def _style_codes(self, data: LatentSet, clips: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        bank = self._train_codes if data is self.train_data else self._val_codes
        codes = bank[torch.from_numpy(clips), torch.from_numpy(rng.integers(0, bank.shape[1], len(clips)))]
        use_target = torch.from_numpy(rng.random(len(clips)) < self.config.target_style_p)
        ids = torch.from_numpy(data.part_style_ids[clips])  # (B, P)
        target = self.style_targets[ids, torch.arange(ids.shape[1])[None].expand_as(ids)]
        return torch.where(use_target[:, None, None], target, codes)

    def make_batch(self, data: LatentSet, text: np.ndarray, rng: np.random.Generator,
                   train: bool = True) -> dict[str, torch.Tensor]:
        c = self.config
        b, t = c.batch_size, c.window
        clips, starts = latent_windows(data, rng, b, t)
        lat_idx = data.latent_offsets[clips][:, None] + starts[:, None] + np.arange(t)[None]
        frame_idx = data.frame_offsets[clips][:, None] + 4 * starts[:, None] + np.arange(4 * t)[None]
        steps = rng.integers(0, self.schedule.steps, size=b)
        drop_style = (rng.random(b) < c.p_drop_style)[:, None] | (rng.random((b, 7)) < c.p_drop_part_style)
        return {
            "latents": torch.from_numpy(data.latents[lat_idx]),
            "audio": torch.from_numpy(data.audio[frame_idx].astype(np.float32)),
            "text": torch.from_numpy(text[lat_idx].astype(np.float32)),
            "style": self._style_codes(data, clips, rng),
            "known_mask": torch.from_numpy(known_masks(rng, b, t, c.p_known)),
            "steps": torch.from_numpy(steps),
            "noise": torch.from_numpy(rng.standard_normal((b, t, 7, 32)).astype(np.float32)),
            "drop_audio": torch.from_numpy((rng.random(b) < c.p_drop_audio).astype(np.float32)),
            "drop_text": torch.from_numpy((rng.random(b) < c.p_drop_text).astype(np.float32)),
            "drop_style": torch.from_numpy(drop_style.astype(np.float32)),
            "part_style_ids": torch.from_numpy(data.part_style_ids[clips].astype(np.int64)),
        }

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.make_batch(self.train_data, self.train_text, rng)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        inner = unwrap(model)
        assert isinstance(inner, GestureDenoiser)
        x0 = inner.normalize(batch["latents"])
        xt = self.schedule.add_noise(x0, batch["steps"], batch["noise"])
        audio_h, text_h = inner.encode_conditions(batch["audio"], batch["text"])
        mask = batch["known_mask"][..., None].expand(-1, -1, 7)
        pred = model(xt, batch["steps"], audio_h, text_h, batch["style"], x0, mask,
                     drop_audio=batch["drop_audio"], drop_text=batch["drop_text"], drop_style=batch["drop_style"])
        err = pred - x0
        if self.config.loss_space == "v":  # x0 - x0_hat = sigma (F - v): the v-prediction's error
            _, sigma = self.schedule.alpha_sigma(batch["steps"])
            err = err / sigma.to(err.dtype).reshape(-1, 1, 1, 1)
        free = (1 - mask)[..., None]  # loss on the frames the model has to make
        denom = free.sum().clamp_min(1.0) * x0.shape[-1]
        rec = (err**2 * free).sum() / denom
        vel_free = free[:, 1:] * free[:, :-1]
        vel = ((err[:, 1:] - err[:, :-1]) ** 2 * vel_free).sum() / (vel_free.sum().clamp_min(1.0) * x0.shape[-1])
        loss = rec + self.config.velocity_weight * vel
        stats = {"rec": float(rec.detach()), "vel": float(vel.detach())}
        if self.config.style_loss_weight > 0:
            style = self.style_consistency(inner, pred, x0, mask, batch)
            loss = loss + self.config.style_loss_weight * style
            stats["style"] = float(style.detach())
        stats = {"loss": float(loss.detach()), **stats}
        return loss, stats

    def style_consistency(self, inner: GestureDenoiser, pred: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor,
                          batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the frozen style encoder on the predicted window (known frames as given) against the
        styles of the parts conditioned on one."""
        whole = mask[..., None] * x0 + (1 - mask[..., None]) * pred
        logits = self.style_encoder.logits(self.style_encoder(inner.denormalize(whole)))  # (B, P, S)
        ce = F.cross_entropy(logits.flatten(0, 1), batch["part_style_ids"].flatten(), reduction="none")
        keep = torch.tensor([p in self.config.style_loss_parts for p in BODY_PARTS], dtype=ce.dtype)
        weight = (1 - batch["drop_style"]) * keep[None]  # (B, P)
        return (ce.view_as(weight) * weight).sum() / weight.sum().clamp_min(1.0)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation loss at fixed noise levels and batches (comparable across checkpoints)."""
        if self._val_batches is None:
            rng = np.random.default_rng(1234)
            self._val_batches = [self.make_batch(self.val_data, self.val_text, rng) for _ in range(4)]
        return self._fixed_batch_loss(model, self._val_batches)

    @torch.no_grad()
    def test(self, model: nn.Module) -> dict[str, float]:
        """The same losses on fixed batches of the test split (tools/train.py --test)."""
        c = self.config
        data = latent_set(c.corpus, "test", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        text = split_text_features(data, c.tg_dir, c.cache_dir, "test", c.workers)
        saved, self._val_codes = self._val_codes, self._clip_window_codes(data, seed=2)
        try:
            rng = np.random.default_rng(4321)
            return self._fixed_batch_loss(model, [self.make_batch(data, text, rng) for _ in range(8)])
        finally:
            self._val_codes = saved

    def _fixed_batch_loss(self, model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for batch in batches:
            batch = {**batch, "drop_audio": torch.zeros_like(batch["drop_audio"]),
                     "drop_text": torch.zeros_like(batch["drop_text"]),
                     "drop_style": torch.zeros_like(batch["drop_style"])}
            _, stats = self.loss(model, batch)
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v / len(batches)
        return totals


def make_task(**task_args: Any) -> DiffusionTask:
    return DiffusionTask(DiffusionTaskConfig(**task_args))


__all__ = ["DiffusionTask", "DiffusionTaskConfig", "F", "make_task"]
