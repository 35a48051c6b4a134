"""Checkpoint I/O: weights as safetensors + a JSON config, never pickle (a model file must not be able to
run code; ``torch.load`` is not used anywhere).

A checkpoint is a folder:

    checkpoint.json          format, model class and architecture config, training config, step, metrics,
                             code version, optimizer scalars (step counts, param-group hyper-parameters),
                             RNG states (python / numpy as JSON)
    model.safetensors        the model's state_dict (parameters and buffers)
    optimizer.safetensors    optional: every tensor of the optimizer's state_dict, flattened as
                             ``state.<param index>.<key>``, plus the torch RNG state (``rng.torch``) and,
                             for runs with an exponential moving average of the weights, the raw training
                             weights (``train.<name>``: model.safetensors then holds the average)

The model is rebuilt from JSON alone: ``model.class`` names a class inside ``gestura.training.models`` (or
``gestura.inference``) with a ``from_config(dict)`` classmethod; nothing else is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "gestura-checkpoint-1"
MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"
META_FILE = "checkpoint.json"
# Model classes a checkpoint may name: only modules of this package, so a JSON file cannot import anything else.
ALLOWED_MODULE_PREFIXES = ("gestura.training.models.", "gestura.inference.")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model it is loaded into."""


@functools.cache
def code_version() -> str:
    """The git commit of the checkout (``+dirty`` with local changes), or ``unknown``. Cached: the first call
    (the trainer makes it when a run starts) names the code the process runs, even if the checkout moves on."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def plain(value: Any) -> Any:
    """JSON-safe copy of configs (dataclasses, paths, tuples, numpy / torch scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return value


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def model_class_path(model: torch.nn.Module) -> str:
    cls = type(unwrap(model))
    return f"{cls.__module__}.{cls.__qualname__}"


def model_config(model: torch.nn.Module) -> dict:
    """The architecture hyper-parameters a model carries in its ``config`` attribute (dataclass or dict)."""
    cfg = getattr(unwrap(model), "config", None)
    return plain(cfg) if cfg is not None else {}


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory (tied weights, views).
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in unwrap(model).state_dict().items()}


def flatten_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state_dict split into tensors (for safetensors) and JSON scalars."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = plain(value)
    return tensors, {"scalars": scalars, "param_groups": plain(state["param_groups"])}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, entry in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    step: int = 0,
    train_config: Any = None,
    optimizer: torch.optim.Optimizer | None = None,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    rng_state: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (a reader never sees a half-written checkpoint). ``extra_tensors``
    go into optimizer.safetensors under their own names (training state that is not the model's weights)."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "model": {"class": model_class_path(model), "config": model_config(model)},
        "train_config": plain(train_config) if train_config is not None else None,
        "step": int(step),
        "metrics": plain(metrics or {}),
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "extra": plain(extra or {}),
    }
    save_file(_state_tensors(model), str(tmp / MODEL_FILE), metadata={"format": FORMAT})
    optim_tensors: dict[str, torch.Tensor] = {}
    if optimizer is not None:
        optim_tensors, meta["optimizer"] = flatten_optimizer_state(optimizer.state_dict())
        meta["optimizer"]["class"] = type(optimizer).__name__
    if rng_state:
        if "torch" in rng_state:
            optim_tensors["rng.torch"] = rng_state["torch"]
        if "cuda" in rng_state:
            for k, s in enumerate(rng_state["cuda"]):
                optim_tensors[f"rng.cuda.{k}"] = s
        meta["rng"] = {k: v for k, v in rng_state.items() if k not in ("torch", "cuda")}
    for name, value in (extra_tensors or {}).items():
        optim_tensors[name] = value.detach().to("cpu").contiguous().clone()
    if optim_tensors or optimizer is not None:
        save_file(optim_tensors, str(tmp / OPTIM_FILE), metadata={"format": FORMAT})
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    old = path.with_name(path.name + ".old")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def model_class(self) -> str:
        return str(self.meta["model"]["class"])

    @property
    def model_config(self) -> dict:
        return dict(self.meta["model"].get("config") or {})

    @property
    def train_config(self) -> dict:
        return dict(self.meta.get("train_config") or {})

    @property
    def metrics(self) -> dict:
        return dict(self.meta.get("metrics") or {})


def read_checkpoint(path: str | Path, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a checkpoint folder (or the model.safetensors / checkpoint.json inside it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_file() and path.name in (MODEL_FILE, META_FILE, OPTIM_FILE):
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    meta_path, model_path = path / META_FILE, path / MODEL_FILE
    for p in (meta_path, model_path):
        if not p.is_file():
            raise CheckpointError(f"{path} is not a checkpoint: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path} is not valid JSON: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT!r})")
    try:
        tensors = load_file(str(model_path))
        optim = load_file(str(path / OPTIM_FILE)) if with_optimizer and (path / OPTIM_FILE).is_file() else {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read the weights in {path}: {e}") from e
    return Checkpoint(path, meta, tensors, optim)


def describe_mismatch(model: torch.nn.Module, tensors: dict[str, torch.Tensor], limit: int = 8) -> list[str]:
    """What differs between a model's state_dict and checkpoint tensors (names, shapes, dtypes)."""
    own = unwrap(model).state_dict()
    problems: list[str] = []
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing:
        problems.append(f"missing in checkpoint ({len(missing)}): {', '.join(missing[:limit])}"
                        + (" ..." if len(missing) > limit else ""))
    if unexpected:
        problems.append(f"not in model ({len(unexpected)}): {', '.join(unexpected[:limit])}"
                        + (" ..." if len(unexpected) > limit else ""))
    shapes = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    if shapes:
        problems.append(f"shape mismatch ({len(shapes)}): " + "; ".join(shapes[:limit])
                        + (" ..." if len(shapes) > limit else ""))
    return problems


def _config_diff(a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: checkpoint {a.get(k, '<unset>')!r} vs model {b.get(k, '<unset>')!r}"
            for k in keys if a.get(k) != b.get(k)]


def load_weights(model: torch.nn.Module, checkpoint: Checkpoint | str | Path) -> Checkpoint:
    """Load a checkpoint's weights into ``model``; raises CheckpointError naming what differs (class, config
    keys, missing / unexpected tensors, shapes)."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    problems = describe_mismatch(model, ckpt.tensors)
    if problems:
        msg = [f"checkpoint {ckpt.path} does not fit {model_class_path(model)}:"]
        if ckpt.model_class != model_class_path(model):
            msg.append(f"model class: checkpoint {ckpt.model_class} vs {model_class_path(model)}")
        diff = _config_diff(ckpt.model_config, model_config(model))
        if diff:
            msg.append("architecture config differs: " + "; ".join(diff))
        msg.extend(problems)
        raise CheckpointError("\n  ".join(msg))
    target = unwrap(model)
    device = next((t.device for t in target.state_dict().values()), torch.device("cpu"))
    with torch.no_grad():
        target.load_state_dict({k: v.to(device) for k, v in ckpt.tensors.items()}, strict=True)
    return ckpt


def load_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    if "optimizer" not in ckpt.meta:
        raise CheckpointError(f"checkpoint {ckpt.path} has no optimizer state")
    state = unflatten_optimizer_state(ckpt.optimizer_tensors, ckpt.meta["optimizer"])
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"optimizer state in {ckpt.path} does not fit: {e}") from e


def resolve_model_class(class_path: str) -> Any:
    if not class_path.startswith(ALLOWED_MODULE_PREFIXES):
        raise CheckpointError(f"checkpoint names model class {class_path!r} outside {ALLOWED_MODULE_PREFIXES}")
    module_name, _, cls_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise CheckpointError(f"model class {class_path!r} of the checkpoint is not available: {e}") from e
    if not hasattr(cls, "from_config"):
        raise CheckpointError(f"model class {class_path} has no from_config()")
    return cls


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Checkpoint]:
    """Rebuild a model from a checkpoint's JSON config and load its weights (eval mode)."""
    ckpt = read_checkpoint(path)
    cls = resolve_model_class(ckpt.model_class)
    model = cls.from_config(ckpt.model_config)
    load_weights(model, ckpt)
    return model.to(device).eval(), ckpt
