"""Load trained modules from `safetensors` + JSON folders without the training package (the add-on ships
no training/). Only classes listed here can be built: a model file names a class, it cannot bring code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError

META_FILE = "checkpoint.json"
MODEL_FILE = "model.safetensors"


def _classes() -> dict[str, Any]:
    from .gesture_diffusion import GestureDenoiser
    from .motion_ae import MotionAE
    from .style_encoder import StyleEncoder
    from .text_gesture import TextGestureModel

    return {"MotionAE": MotionAE, "TextGestureModel": TextGestureModel, "StyleEncoder": StyleEncoder,
            "GestureDenoiser": GestureDenoiser}


def read_meta(folder: str | Path) -> dict:
    folder = Path(folder)
    meta_path, weights = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file() or not weights.is_file():
        raise InputError(f"No model in {folder}: expected {META_FILE} and {MODEL_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"Unreadable model description {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise InputError(f"{meta_path} is not a Gestura model description")
    return meta


def load_module(folder: str | Path, expected: str | None = None) -> nn.Module:
    """Build the module a checkpoint folder describes and load its weights (CPU, eval mode)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_meta(folder)
    name = str(meta["model"].get("class", "")).rsplit(".", 1)[-1]
    classes = _classes()
    if name not in classes or (expected and name != expected):
        raise InputError(f"{folder} holds a {name or 'unknown'} model, expected {expected or 'a known model'}")
    model = classes[name].from_config(meta["model"].get("config", {}))
    try:
        tensors = load_file(str(folder / MODEL_FILE))
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"The weights in {folder} do not fit this version of Gestura: {exc}") from exc
    return model.eval()


def load_motion_ae(folder: str | Path) -> Any:
    return load_module(folder, "MotionAE")


def load_text_gesture(folder: str | Path) -> Any:
    return load_module(folder, "TextGestureModel")


def load_transcript_vocab(folder: str | Path) -> Any:
    from .text_gesture import Vocabulary

    meta = read_meta(folder)
    return Vocabulary(list(meta["model"]["config"]["vocab"]))


__all__ = ["load_module", "load_motion_ae", "load_text_gesture", "load_transcript_vocab", "read_meta", "torch"]
