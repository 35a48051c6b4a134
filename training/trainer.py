"""The trainer every Gestura model plugs into: a ``Task`` builds its model, yields batches, computes its loss
and evaluates; ``train(task, config)`` does the rest.

What it does: JSON config files (``training/configs/*.json``), AdamW with linear warm-up and cosine decay,
gradient clipping, resumable checkpoints (``checkpoints/latest`` and ``checkpoints/best``, safetensors + JSON,
see training/checkpoint.py), tqdm progress, loss curves (``train_log.csv``, ``eval_log.csv``, ``curves.png``),
CPU or CUDA (``device: "auto"``), seeds (python, numpy, torch), an optional wall-clock budget, an optional
exponential moving average of the weights (``ema_decay``: evaluated, selected and saved as the model; the raw
weights travel in the checkpoint's training state for resuming), and several
processes through ``torchrun`` (DistributedDataParallel when ``WORLD_SIZE > 1``; gloo on CPU, nccl on CUDA;
every rank draws its own batches; only rank 0 evaluates and writes).

    torchrun --standalone --nproc_per_node=4 tools/train.py --config training/configs/motion_ae.json

Task contract (see ``Task``): ``loss`` receives the *wrapped* model (DistributedDataParallel under torchrun)
and must call it (``model(...)``) for its gradients to be synchronised; use ``unwrap(model)`` for anything
else (attributes, helper methods). ``evaluate`` receives the bare model in eval mode under ``torch.no_grad``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .checkpoint import (
    META_FILE,
    CheckpointError,
    code_version,
    load_optimizer,
    load_weights,
    plain,
    read_checkpoint,
    save_checkpoint,
    unwrap,
)

__all__ = [
    "DistInfo",
    "Task",
    "TrainConfig",
    "TrainResult",
    "batch_to",
    "dist_info",
    "load_config",
    "resolve_device",
    "train",
    "unwrap",
]


@runtime_checkable
class Task(Protocol):
    """What a model brings to the trainer.

    name: short identifier (used in logs and checkpoints).
    build_model(): a fresh model. Give it a ``config`` attribute (dataclass or dict of architecture
        hyper-parameters) and a ``from_config(dict)`` classmethod so checkpoints can rebuild it from JSON.
    train_batches(rng): an endless iterator of batches (dicts of tensors, on CPU; the trainer moves them to the
        device). ``rng`` is seeded from (seed, rank, start step), so ranks draw different batches.
    loss(model, batch): (scalar loss to minimise, dict of floats to log). ``model`` may be wrapped in
        DistributedDataParallel: call it, and use ``unwrap(model)`` for anything else.
    evaluate(model): metrics on the validation split (bare model, eval mode, no grad). The selection metric
        is ``TrainConfig.select_metric`` or else the first key; lower is better unless ``select_mode="max"``.
    """

    name: str

    def build_model(self) -> torch.nn.Module: ...

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]: ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    steps: int = 1000
    batch_size: int = 32  # per process; tasks read it through their own settings or config.batch_size
    lr: float = 1e-3
    min_lr_ratio: float = 0.05  # cosine decay to lr * min_lr_ratio at the last step
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: int = 100
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    log_every: int = 50
    eval_every: int = 500
    ckpt_every: int = 500
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch.set_num_threads on CPU; 0 leaves torch's default
    time_limit_min: float = 0.0  # stop (evaluate and save) after this many minutes; 0: no limit
    ema_decay: float = 0.0  # exponential moving average of the weights (e.g. 0.999); 0: off
    select_metric: str = ""  # eval metric for the best checkpoint; "" = first key of evaluate()
    select_mode: str = "min"  # min | max
    progress: bool = True  # tqdm bar (rank 0)
    plot: bool = True  # curves.png after each evaluation

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(names)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass
class TrainResult:
    out_dir: Path
    step: int  # the last step trained (== config.steps unless the time limit stopped it)
    start_step: int  # 0, or the step a resumed run started from
    best_metric: float
    best_step: int
    last_metrics: dict[str, float]
    train_loss: float  # mean loss over the last log window
    wall_seconds: float
    latest: Path
    best: Path
    history: list[dict[str, float]] = field(default_factory=list)  # logged train rows (this run)


def load_config(path: str | Path) -> tuple[str, dict[str, Any], TrainConfig]:
    """A training config file: ``{"task": NAME, "task_args": {...}, "train": {...TrainConfig...}}``."""
    d = json.loads(Path(path).read_text())
    unknown = sorted(set(d) - {"task", "task_args", "train", "comment"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}")
    if "task" not in d:
        raise ValueError(f"{path}: no 'task'")
    return str(d["task"]), dict(d.get("task_args", {})), TrainConfig.from_dict(d.get("train", {}))


def make_task(name: str, **task_args: Any) -> Task:
    """The task ``name``: ``gestura.training.models.<name>.make_task(**task_args)``."""
    import importlib

    if not name.isidentifier():
        raise ValueError(f"bad task name {name!r}")
    pkg = __name__.rpartition(".")[0]  # gestura.training
    module = importlib.import_module(f"{pkg}.models.{name}")
    factory = getattr(module, "make_task", None)
    if factory is None:
        raise ValueError(f"{module.__name__} has no make_task()")
    return factory(**task_args)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or (torch.distributed.is_available() and torch.distributed.is_initialized())

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Rank and world size from torchrun's environment variables (or an initialised process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                    int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if device == "cuda" and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def batch_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up to lr, then cosine decay to lr * min_lr_ratio at config.steps."""
    if config.warmup > 0 and step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    t = min(1.0, (step - config.warmup) / span)
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


class _CsvLog:
    """Append-only CSV whose columns are fixed by the first row; on resume rows after ``keep_until`` go."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        self.fields: list[str] | None = None
        self.rows: list[dict[str, Any]] = []
        if path.exists() and keep_until is not None:
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or []) or None
                self.rows = [r for r in reader if float(r.get("step", 0)) <= keep_until]
            self._rewrite()
        elif path.exists():
            path.unlink()

    def _rewrite(self) -> None:
        if not self.fields:
            return
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)

    def add(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with self.path.open("w", newline="") as f:
                csv.DictWriter(f, self.fields).writeheader()
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)


def plot_curves(out_dir: Path, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]],
                title: str = "") -> Path | None:
    """curves.png: training loss terms (log scale) and evaluation metrics against the step."""
    if not train_rows and not eval_rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    skip = {"step", "lr", "seconds", "steps_per_s"}
    for ax, rows, label in ((axes[0], train_rows, "train"), (axes[1], eval_rows, "eval")):
        if rows:
            steps = [float(r["step"]) for r in rows]
            for key in rows[0]:
                if key in skip:
                    continue
                vals = [float(r[key]) if r.get(key) not in (None, "") else math.nan for r in rows]
                ax.plot(steps, vals, label=key, marker="o" if label == "eval" and len(rows) < 30 else None)
            positive = all(float(r[k]) > 0 for r in rows for k in r if k not in skip and r.get(k) not in (None, ""))
            if positive:
                ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_xlabel("step")
        ax.set_title(f"{title} {label}".strip())
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "curves.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": plain(random.getstate()),
        "numpy": plain(np.random.get_state(legacy=False)),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def _restore_rng(ckpt_meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    rng = ckpt_meta.get("rng", {})
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    if "python" in rng:
        v, internal, gauss = rng["python"]
        random.setstate((v, tuple(internal), gauss))
    if "numpy" in rng:
        state = dict(rng["numpy"])
        state["state"] = {**state["state"], "key": np.asarray(state["state"]["key"], dtype=np.uint32)}
        np.random.set_state(state)


def _better(value: float, best: float, mode: str) -> bool:
    if math.isnan(value):
        return False
    return value < best if mode == "min" else value > best


def _init_distributed(info: DistInfo, device: torch.device) -> bool:
    """Initialise the default process group when torchrun asked for several processes; True when we did."""
    if info.world_size <= 1 or torch.distributed.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend)
    return True


def _all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    t /= torch.distributed.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def _any_rank(flag: bool, device: torch.device) -> bool:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


class WeightAverage:
    """Exponential moving average of a model's floating-point parameters and buffers (diffusion models sample
    much better from the average than from the last step's weights). The decay ramps up over the first steps
    ((1 + n) / (10 + n)), so an average started from random weights forgets them quickly."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach(), 1.0 - d)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        """The average in the model for the duration; yields the raw weights it replaced."""
        state = model.state_dict()
        raw = {k: state[k].detach().clone() for k in self.shadow}
        with torch.no_grad():
            for k, v in self.shadow.items():
                state[k].copy_(v)
        try:
            yield raw
        finally:
            with torch.no_grad():
                for k, v in raw.items():
                    state[k].copy_(v)


def train(task: Task, config: TrainConfig, resume: bool = True) -> TrainResult:
    """Train ``task`` under ``config``; with ``resume`` a run continues from ``out_dir/checkpoints/latest``
    (model, optimizer, step, RNG states) when it exists. Returns where things went and the final metrics."""
    started = time.perf_counter()
    code_version()  # recorded now, before the checkout can change under a long run
    info = dist_info()
    device = resolve_device(config.device, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    we_initialised = _init_distributed(info, device)
    info = dist_info()
    out = Path(config.out_dir)
    ckpt_dir = out / "checkpoints"
    latest, best_path = ckpt_dir / "latest", ckpt_dir / "best"
    if info.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    try:
        seed_everything(config.seed)
        model = task.build_model().to(device)
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=config.betas,
        )
        start_step = 0
        best_metric = math.inf if config.select_mode == "min" else -math.inf
        best_step = -1
        resumed_average: dict[str, torch.Tensor] = {}
        if resume and (latest / META_FILE).is_file():
            ckpt = read_checkpoint(latest, with_optimizer=True)
            load_weights(model, ckpt)
            raw = {k[len("train."):]: v for k, v in ckpt.optimizer_tensors.items() if k.startswith("train.")}
            if raw:  # model.safetensors holds the average: train on from the raw weights
                resumed_average = {k: w.detach().clone() for k, w in model.state_dict().items()}
                with torch.no_grad():
                    for k, w in raw.items():
                        model.state_dict()[k].copy_(w)
            load_optimizer(optimizer, ckpt)
            _restore_rng(ckpt.meta, ckpt.optimizer_tensors)
            start_step = ckpt.step
            extra = ckpt.meta.get("extra", {})
            best_metric = float(extra.get("best_metric", best_metric))
            best_step = int(extra.get("best_step", best_step))
        if config.select_mode not in ("min", "max"):
            raise ValueError(f"select_mode must be 'min' or 'max', got {config.select_mode!r}")
        average = WeightAverage(model, config.ema_decay) if config.ema_decay > 0 else None
        if average is not None and start_step:
            if resumed_average:
                average.shadow = {k: w.to(device) for k, w in resumed_average.items() if k in average.shadow}
            average.updates = start_step

        ddp_model: torch.nn.Module = model
        if info.enabled:
            ddp_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
            )
        if info.main:
            (out / "config.json").write_text(json.dumps(
                {"task": task.name, "task_config": plain(getattr(task, "config", None)), "train": plain(config)},
                indent=1))
        train_log = _CsvLog(out / "train_log.csv", start_step if start_step else None) if info.main else None
        eval_log = _CsvLog(out / "eval_log.csv", start_step if start_step else None) if info.main else None

        rng = np.random.default_rng([config.seed, info.rank, start_step])
        batches = task.train_batches(rng)
        bar = None
        if info.main and config.progress and start_step < config.steps:
            from tqdm import tqdm

            bar = tqdm(total=config.steps, initial=start_step, desc=task.name, dynamic_ncols=True, unit="step")

        window: dict[str, list[float]] = {}
        history: list[dict[str, float]] = []
        last_metrics: dict[str, float] = {}
        last_loss = math.nan
        step = start_step
        t_log = time.perf_counter()
        steps_in_window = 0

        def averaged() -> contextlib.AbstractContextManager[dict[str, torch.Tensor]]:
            """The weights to evaluate and save (the average when there is one), and the raw ones to keep."""
            return average.swapped_in(model) if average is not None else contextlib.nullcontext({})

        def save_latest(step: int, metrics: dict[str, float], extra: dict[str, Any]) -> None:
            """checkpoints/latest, with the model's weights averaged when there is an average (the raw ones
            go with the training state)."""
            with averaged() as raw:
                save_checkpoint(latest, model, step=step, train_config=config, optimizer=optimizer,
                                metrics=metrics, extra=extra, rng_state=_rng_state(),
                                extra_tensors={f"train.{k}": v for k, v in raw.items()})

        def evaluate_and_save(step: int, final: bool) -> None:
            nonlocal best_metric, best_step, last_metrics
            if info.main:
                with averaged():
                    model.eval()
                    with torch.no_grad():
                        metrics = {k: float(v) for k, v in task.evaluate(model).items()}
                    model.train()
                last_metrics = metrics
                key = config.select_metric or (next(iter(metrics)) if metrics else "")
                value = metrics.get(key, math.nan) if key else -float(step)  # no metrics: latest is best
                if not metrics and config.select_mode == "max":
                    value = float(step)
                improved = _better(value, best_metric, config.select_mode)
                if improved:
                    best_metric, best_step = value, step
                assert eval_log is not None and train_log is not None
                eval_log.add({"step": step, **metrics})
                extra = {"best_metric": best_metric, "best_step": best_step, "select_metric": key,
                         "task": task.name, "task_config": plain(getattr(task, "config", None)),
                         "ema_decay": config.ema_decay}
                save_latest(step, metrics, extra)
                if improved:
                    with averaged():
                        save_checkpoint(best_path, model, step=step, train_config=config, metrics=metrics,
                                        extra=extra)
                if config.plot:
                    plot_curves(out, train_log.rows, eval_log.rows, task.name)
                if bar is not None:
                    bar.write(f"[{task.name}] step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                              + (" (best)" if improved else ""))
            _barrier()

        model.train()
        while step < config.steps:
            lr = lr_at(step, config)
            for g in optimizer.param_groups:
                g["lr"] = lr
            batch = batch_to(next(batches), device)
            loss, terms = task.loss(ddp_model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                gn = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                terms = {**terms, "grad_norm": float(gn)}
            optimizer.step()
            if average is not None:
                average.update(model)
            step += 1
            steps_in_window += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise FloatingPointError(f"{task.name}: loss is {lv} at step {step}")
            for k, v in {"loss": lv, **terms}.items():
                window.setdefault(k, []).append(float(v))
            if bar is not None:
                bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                means = _all_reduce_mean({k: float(np.mean(v)) for k, v in window.items()}, device)
                now = time.perf_counter()
                row = {"step": step, "lr": lr, **means, "seconds": round(now - started, 2),
                       "steps_per_s": steps_in_window / max(now - t_log, 1e-9)}
                last_loss = means["loss"]
                history.append(row)
                if train_log is not None:
                    train_log.add(row)
                if bar is not None:
                    bar.set_postfix(loss=f"{last_loss:.4g}", lr=f"{lr:.2e}")
                window, t_log, steps_in_window = {}, now, 0
            out_of_time = config.time_limit_min > 0 and (time.perf_counter() - started) > 60 * config.time_limit_min
            out_of_time = _any_rank(out_of_time, device) if info.enabled else out_of_time
            final = step == config.steps or out_of_time
            # Decided from the step alone, so every rank takes the same branch (evaluate_and_save has a barrier).
            if final or step % config.eval_every == 0:
                evaluate_and_save(step, final)
            elif step % config.ckpt_every == 0:
                if info.main:
                    extra = {"best_metric": best_metric, "best_step": best_step, "task": task.name,
                             "task_config": plain(getattr(task, "config", None)), "ema_decay": config.ema_decay}
                    save_latest(step, last_metrics, extra)
                _barrier()
            if out_of_time:
                if bar is not None:
                    bar.write(f"[{task.name}] time limit of {config.time_limit_min} min reached at step {step}")
                break
        if bar is not None:
            bar.close()
        if step == start_step and info.main and not (latest / META_FILE).is_file():
            evaluate_and_save(step, True)  # nothing to train: still leave an evaluated checkpoint
        if info.main and not last_metrics and (latest / META_FILE).is_file():
            with contextlib.suppress(CheckpointError):
                last_metrics = read_checkpoint(latest).metrics
        return TrainResult(out, step, start_step, best_metric, best_step, last_metrics, last_loss,
                           time.perf_counter() - started, latest, best_path, history)
    finally:
        if we_initialised:
            torch.distributed.destroy_process_group()
