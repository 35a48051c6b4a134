"""Training task for the motion style encoder (inference/nets/style_encoder.py) and the style-space targets.

Each body part's code is trained as a cosine classifier of that part's style label (per-part mixed clips
teach the parts apart), on random windows of 2 to 6.4 seconds of motion latents. After training,
``style_space_targets`` averages the codes of whole training clips per style and part: the targets that the
text adapters are fitted to (models/starter/style_space.*).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...inference.nets.style_encoder import StyleEncoder, StyleEncoderConfig
from ..checkpoint import unwrap
from ..data.latent_set import LatentSet, latent_set, latent_windows

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass
class StyleEncoderTaskConfig:
    corpus: str = "data/corpus"
    ae_dir: str = str(WEIGHTS / "motion_ae")
    tg_dir: str = str(WEIGHTS / "text_gesture")
    cache_dir: str = ".cache/latents"
    batch_size: int = 128
    min_window: int = 16
    max_window: int = 48
    max_clips: int = 0  # 0: every clip (small values for tests)
    model: dict[str, Any] = field(default_factory=dict)


def latent_stats(data: LatentSet) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.from_numpy(data.latents)
    return z.mean(0), z.std(0).clamp_min(1e-3)


@torch.no_grad()
def clip_codes(model: StyleEncoder, data: LatentSet, min_frames: int = 16) -> torch.Tensor:
    """Unit codes of whole clips (N, P, dim); a clip shorter than min_frames is repeated to that length."""
    out = []
    for k in range(len(data)):
        z = torch.from_numpy(data.clip(k)["latents"])
        if len(z) < min_frames:
            z = z.repeat((min_frames + len(z) - 1) // len(z), 1, 1)
        out.append(model(z[None])[0])
    return torch.stack(out)


@torch.no_grad()
def style_space_targets(codes: torch.Tensor, part_style_ids: np.ndarray, num_styles: int) -> torch.Tensor:
    """Mean unit code per style and part, renormalised: (num_styles, P, dim)."""
    ids = torch.from_numpy(np.asarray(part_style_ids))
    p, dim = codes.shape[1:]
    targets = torch.zeros(num_styles, p, dim)
    for s in range(num_styles):
        for part in range(p):
            sel = ids[:, part] == s
            if sel.any():
                targets[s, part] = F.normalize(codes[sel, part].mean(0), dim=-1)
    return targets


def part_accuracy(model: StyleEncoder, codes: torch.Tensor, part_style_ids: np.ndarray) -> torch.Tensor:
    pred = model.logits(codes).argmax(-1)
    return (pred == torch.from_numpy(np.asarray(part_style_ids))).float().mean(0)


class StyleEncoderTask:
    name = "style_encoder"

    def __init__(self, config: StyleEncoderTaskConfig) -> None:
        self.config = c = config
        self.train_data = latent_set(c.corpus, "train", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        self.val_data = latent_set(c.corpus, "val", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        self.num_styles = 25

    def build_model(self) -> StyleEncoder:
        cfg = StyleEncoderConfig(**{"num_styles": self.num_styles, **self.config.model})
        model = StyleEncoder(cfg)
        mean, std = latent_stats(self.train_data)
        model.latent_mean.copy_(mean)
        model.latent_std.copy_(std)
        return model

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        c, data = self.config, self.train_data
        while True:
            length = int(rng.integers(c.min_window, c.max_window + 1))
            clips, starts = latent_windows(data, rng, c.batch_size, length)
            idx = data.latent_offsets[clips][:, None] + starts[:, None] + np.arange(length)[None]
            yield {"latents": torch.from_numpy(data.latents[idx]),
                   "labels": torch.from_numpy(data.part_style_ids[clips])}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        codes = model(batch["latents"])
        logits = unwrap(model).logits(codes)  # type: ignore[operator]
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())
        acc = (logits.argmax(-1) == batch["labels"]).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        assert isinstance(model, StyleEncoder)
        acc = part_accuracy(model, clip_codes(model, self.val_data), self.val_data.part_style_ids)
        names = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
        return {"acc": float(acc.mean()), **{f"acc_{n}": float(a) for n, a in zip(names, acc, strict=False)}}

    def test(self, model: nn.Module) -> dict[str, float]:
        c = self.config
        test = latent_set(c.corpus, "test", c.ae_dir, c.tg_dir, c.cache_dir, max_clips=c.max_clips)
        self.val_data, saved = test, self.val_data
        try:
            return self.evaluate(model)
        finally:
            self.val_data = saved


def export_style_space(model: StyleEncoder, task: StyleEncoderTask, out_dir: str | Path) -> Path:
    """Write models/<name>/style_space.safetensors (+ .json): the per-style, per-part target codes."""
    from safetensors.torch import save_file

    from ...inference.style_catalog import STYLE_CATALOG

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = clip_codes(model, task.train_data)
    targets = style_space_targets(codes, task.train_data.part_style_ids, task.num_styles)
    save_file({"codes": targets.contiguous()}, str(out_dir / "style_space.safetensors"))
    styles = [{"id": s.id, "name": s.name, "descriptions": list(s.descriptions[:-len(s.held_out)]),
               "held_out": list(s.held_out)}
              for s in STYLE_CATALOG]
    meta = {"format": "gestura-style-space-1", "parts": ["head", "torso", "left_arm", "right_arm", "left_hand",
                                                         "right_hand", "lower_body"],
            "dim": int(targets.shape[-1]), "styles": styles}
    (out_dir / "style_space.json").write_text(json.dumps(meta, indent=1))
    return out_dir / "style_space.safetensors"


def make_task(**task_args: Any) -> StyleEncoderTask:
    return StyleEncoderTask(StyleEncoderTaskConfig(**task_args))
