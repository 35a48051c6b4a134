"""Assemble a diffusion model folder (what the add-on loads: inference/diffusion_engine.py) from trained parts.

    models/<name>/
      gestura_model.json              format, components, sampling defaults, provenance
      denoiser/ motion_ae/ text_gesture/ style_encoder/    checkpoint.json + model.safetensors each
      style_space.safetensors (+ .json)                    per-style, per-part target codes
      text_adapter_<backbone>/        (optional) text adapters into the style space

Only the weights and the model description are copied (no optimizer state): safetensors + JSON, never pickle.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..inference.diffusion_engine import MODEL_FILE, MODEL_FORMAT


def _copy_checkpoint(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint.json", "model.safetensors"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"{src / name} is missing")
        shutil.copyfile(src / name, dst / name)


def assemble_model(out_dir: str | Path, *, denoiser: str | Path, motion_ae: str | Path, text_gesture: str | Path,
                   style_encoder: str | Path, style_space: str | Path, defaults: dict[str, Any] | None = None,
                   provenance: dict[str, Any] | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, src in (("denoiser", denoiser), ("motion_ae", motion_ae), ("text_gesture", text_gesture),
                      ("style_encoder", style_encoder)):
        _copy_checkpoint(Path(src), out / name)
    space = Path(style_space)
    shutil.copyfile(space, out / "style_space.safetensors")
    shutil.copyfile(space.with_suffix(".json"), out / "style_space.json")
    desc = {
        "format": MODEL_FORMAT,
        "components": {"denoiser": "denoiser", "motion_ae": "motion_ae", "text_gesture": "text_gesture",
                       "style_encoder": "style_encoder", "style_space": "style_space.safetensors"},
        "defaults": {"steps": 8, "sampler": "dpm", "strength": 2.0, "window": 128, "overlap": 16,
                     "text_backbone": "minilm", "text_adapters": {"minilm": "text_adapter_minilm"},
                     **(defaults or {})},
        "provenance": provenance or {},
    }
    (out / MODEL_FILE).write_text(json.dumps(desc, indent=1))
    return out
