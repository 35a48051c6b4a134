"""The trainer and checkpoint I/O: loss decreases, safetensors + JSON round trip, resume, clear errors,
config files, and the distributed path in one process (gloo)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gestura.training.checkpoint import (
    CheckpointError,
    flatten_optimizer_state,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    unflatten_optimizer_state,
)
from gestura.training.trainer import Task, TrainConfig, load_config, lr_at, train, unwrap


@dataclass
class ToyConfig:
    dim: int = 8
    hidden: int = 16


class ToyModel(torch.nn.Module):
    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.net = torch.nn.Sequential(torch.nn.Linear(config.dim, config.hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(config.hidden, 1))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_config(cls, d: dict) -> ToyModel:
        return cls(ToyConfig(**d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ToyTask:
    name = "toy"

    def __init__(self, dim: int = 8, hidden: int = 16) -> None:
        self.config = ToyConfig(dim, hidden)
        g = np.random.default_rng(123)
        self.w = torch.tensor(g.normal(size=(dim, 1)), dtype=torch.float32)
        self.x_val = torch.tensor(g.normal(size=(64, dim)), dtype=torch.float32)

    def build_model(self) -> torch.nn.Module:
        return ToyModel(self.config)

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            x = torch.tensor(rng.normal(size=(32, self.config.dim)), dtype=torch.float32)
            yield {"x": x, "y": x @ self.w}

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(batch["x"])
        loss = torch.mean((pred - batch["y"]) ** 2)
        unwrap(model).calls += 1
        return loss, {"mse": float(loss.detach())}

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        pred = model(self.x_val)
        return {"val_mse": float(torch.mean((pred - self.x_val @ self.w) ** 2))}


def _config(tmp_path, **kw) -> TrainConfig:
    base = {"out_dir": str(tmp_path / "run"), "steps": 60, "lr": 1e-2, "warmup": 5, "log_every": 10,
            "eval_every": 30, "ckpt_every": 10, "seed": 3, "device": "cpu", "progress": False, "plot": False}
    base.update(kw)
    return TrainConfig(**base)


def test_task_protocol_and_lr_schedule():
    assert isinstance(ToyTask(), Task)
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    assert lr_at(55, cfg) == pytest.approx(0.55)


def test_train_loss_decreases_and_writes_logs(tmp_path):
    result = train(ToyTask(), _config(tmp_path, plot=True))
    assert result.step == 60 and result.start_step == 0
    assert result.history[-1]["loss"] < 0.3 * result.history[0]["loss"]
    out = tmp_path / "run"
    for name in ("train_log.csv", "eval_log.csv", "curves.png", "config.json"):
        assert (out / name).is_file(), name
    assert (result.latest / "model.safetensors").is_file() and (result.best / "checkpoint.json").is_file()
    meta = json.loads((result.latest / "checkpoint.json").read_text())
    assert meta["step"] == 60 and meta["model"]["config"] == {"dim": 8, "hidden": 16}
    assert meta["train_config"]["lr"] == 1e-2 and "code_version" in meta
    assert result.best_step in (30, 60) and result.last_metrics["val_mse"] > 0


def test_checkpoint_round_trip_is_exact(tmp_path):
    task = ToyTask()
    torch.manual_seed(0)
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = next(task.train_batches(np.random.default_rng(0)))
    task.loss(model, batch)[0].backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", model, step=7, optimizer=opt, train_config=TrainConfig())
    # Nothing pickled: only safetensors and JSON in the folder.
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "checkpoint.json", "model.safetensors", "optimizer.safetensors"]
    other = ToyModel(ToyConfig())
    ckpt = load_weights(other, tmp_path / "ck")
    assert ckpt.step == 7
    x = torch.randn(5, 8)
    assert torch.equal(model(x), other(x))
    assert torch.equal(other.calls, model.calls) and int(other.calls) == 1
    # Optimizer state survives the flatten / unflatten through safetensors + JSON.
    tensors, meta = flatten_optimizer_state(opt.state_dict())
    restored = unflatten_optimizer_state(tensors, json.loads(json.dumps(meta)))
    opt2 = torch.optim.AdamW(other.parameters(), lr=1e-3)
    opt2.load_state_dict(restored)
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_checkpoint_errors_name_what_differs(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    with pytest.raises(CheckpointError, match=r"checkpoint\.json is missing"):
        read_checkpoint(tmp_path / "half")
    save_checkpoint(tmp_path / "ck", ToyModel(ToyConfig(hidden=16)))
    with pytest.raises(CheckpointError) as e:
        load_weights(ToyModel(ToyConfig(hidden=12)), tmp_path / "ck")
    text = str(e.value)
    assert "hidden: checkpoint 16 vs model 12" in text
    assert "net.0.weight: checkpoint (16, 8) vs model (12, 8)" in text


def test_resume_continues_from_saved_step(tmp_path):
    first = train(ToyTask(), _config(tmp_path, steps=40))
    assert read_checkpoint(first.latest).step == 40
    saved = read_checkpoint(first.latest).tensors
    # A longer run resumes at step 40 from the saved weights and optimizer state.
    second = train(ToyTask(), _config(tmp_path, steps=60))
    assert second.start_step == 40 and second.step == 60
    assert second.history[0]["step"] == 50
    ck = read_checkpoint(second.latest)
    assert ck.step == 60 and int(ck.tensors["calls"]) == 60
    assert not torch.equal(ck.tensors["net.0.weight"], saved["net.0.weight"])
    rows = (tmp_path / "run" / "train_log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [str(s) for s in range(10, 61, 10)]
    # Without resume it starts over.
    third = train(ToyTask(), _config(tmp_path, steps=20), resume=False)
    assert third.start_step == 0 and read_checkpoint(third.latest).step == 20


def test_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"task": "motion_ae", "task_args": {"corpus": "x"}, "train": {"steps": 5}}))
    name, args, cfg = load_config(path)
    assert name == "motion_ae" and args == {"corpus": "x"} and cfg.steps == 5
    path.write_text(json.dumps({"task": "x", "train": {"stepz": 5}}))
    with pytest.raises(ValueError, match="stepz"):
        load_config(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_distributed_path_single_process(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    try:
        seen: list[str] = []

        class Spy(ToyTask):
            def loss(self, model, batch):
                seen.append(type(model).__name__)
                return super().loss(model, batch)

        result = train(Spy(), _config(tmp_path, steps=20))
        assert set(seen) == {"DistributedDataParallel"}
        assert result.history[-1]["loss"] < result.history[0]["loss"]
        assert read_checkpoint(result.latest).step == 20
        # The saved names are the bare model's (no "module." prefix), so it loads without DDP.
        load_weights(ToyModel(ToyConfig()), result.latest)
    finally:
        torch.distributed.destroy_process_group()


def test_weight_average_is_what_is_saved_and_resumes_exactly(tmp_path):
    """With ema_decay the saved model is the moving average (evaluated and selected as such); the raw weights go
    with the training state, and a resumed run continues from them and from the average."""
    from gestura.training.trainer import WeightAverage

    toy = ToyModel(ToyConfig())
    average = WeightAverage(toy, 0.9)
    with torch.no_grad():
        toy.net[0].weight.add_(1.0)
    average.update(toy)  # early updates follow closely: decay (1 + 1) / (10 + 1)
    first_decay = 2 / 11
    expected = toy.net[0].weight - 1.0 + (1 - first_decay) * 1.0
    assert torch.allclose(average.shadow["net.0.weight"], expected)
    assert "calls" not in average.shadow  # integer buffers are not averaged
    with average.swapped_in(toy) as raw:
        assert torch.allclose(toy.net[0].weight, expected)
    assert torch.equal(toy.net[0].weight, raw["net.0.weight"])

    full = train(ToyTask(), _config(tmp_path / "full", steps=60, ema_decay=0.95))
    ck = read_checkpoint(full.latest, with_optimizer=True)
    raw_w = ck.optimizer_tensors["train.net.0.weight"]
    assert not torch.allclose(ck.tensors["net.0.weight"], raw_w)  # the average differs from the last step
    assert ck.meta["extra"]["ema_decay"] == 0.95
    # The average is a better model of the toy target than its noisy last step, or at least as good.
    assert full.last_metrics["val_mse"] < 0.5

    # Resuming continues from the raw weights and the saved average: with a learning rate of 0 the raw weights stay
    # put and the average closes in on them by the decays of the ten new updates.
    first = train(ToyTask(), _config(tmp_path / "resumed", steps=30, ema_decay=0.95))
    ck1 = read_checkpoint(first.latest, with_optimizer=True)
    resumed = train(ToyTask(), _config(tmp_path / "resumed", steps=40, ema_decay=0.95, lr=0.0))
    assert resumed.start_step == 30
    ck2 = read_checkpoint(resumed.latest, with_optimizer=True)
    raw1 = ck1.optimizer_tensors["train.net.0.weight"]
    assert torch.equal(ck2.optimizer_tensors["train.net.0.weight"], raw1)
    keep = float(np.prod([min(0.95, (1 + n) / (10 + n)) for n in range(31, 41)]))
    expected = raw1 + (ck1.tensors["net.0.weight"] - raw1) * keep
    assert torch.allclose(ck2.tensors["net.0.weight"], expected, atol=1e-6)
