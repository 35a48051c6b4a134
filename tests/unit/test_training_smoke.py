"""The starter model's training pipeline end to end on the small smoke corpus: the motion style encoder and its
style space, the denoiser (v-parameterised, v-space loss, weight average), the model folder, and a generation
with the folder through the add-on's engine. Small settings: this shows the pipeline runs and learns, not how
well (docs/DIFFUSION.md has the real run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "training" / "weights"


@pytest.fixture(scope="module")
def style_dir(smoke_corpus, tmp_path_factory) -> Path:
    from gestura.training.models.style_encoder import export_style_space, make_task
    from gestura.training.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("style")
    task = make_task(corpus=str(smoke_corpus), cache_dir=str(ROOT / ".cache" / "latents"), batch_size=32)
    result = train(task, TrainConfig(out_dir=str(out), steps=40, lr=2e-3, warmup=5, eval_every=40, ckpt_every=40,
                                     device="cpu", threads=1, progress=False, plot=False, select_metric="acc",
                                     select_mode="max"))
    assert result.last_metrics["acc"] > 1 / 25  # better than chance after 40 steps
    from gestura.training.checkpoint import load_model

    model, _ = load_model(result.best)
    export_style_space(model, task, result.best)  # type: ignore[arg-type]
    codes = json.loads((result.best / "style_space.json").read_text())
    assert codes["dim"] == 64 and len(codes["styles"]) == 25
    return result.best


def test_denoiser_trains_in_v_space_and_its_folder_generates(smoke_corpus, style_dir, tmp_path) -> None:
    from gestura.inference.audio import audio_features, load_audio
    from gestura.inference.diffusion_engine import generate_diffusion
    from gestura.inference.pipeline import EngineOptions
    from gestura.inference.transcript import load_transcript
    from gestura.training.diffusion_bundle import assemble_model
    from gestura.training.models.gesture_diffusion import make_task
    from gestura.training.trainer import TrainConfig, train

    task = make_task(corpus=str(smoke_corpus), style_dir=str(style_dir), cache_dir=str(ROOT / ".cache" / "latents"),
                     window=16, batch_size=8, workers=1, loss_space="v",
                     model={"group": 8, "heads": 2, "layers": 1, "ff": 32, "lookback": 16, "prediction": "v"})
    # The v-space loss is the x0 error over sigma: the error of the network's own v output.
    model = task.build_model().eval()
    batch = task.make_batch(task.val_data, task.val_text, np.random.default_rng(0))
    batch["known_mask"].zero_()
    _, stats = task.loss(model, batch)
    with torch.no_grad():
        x0 = model.normalize(batch["latents"])
        xt = task.schedule.add_noise(x0, batch["steps"], batch["noise"])
        ah, th = model.encode_conditions(batch["audio"], batch["text"])
        pred = model(xt, batch["steps"], ah, th, batch["style"], x0, torch.zeros(x0.shape[:3]),
                     drop_audio=batch["drop_audio"], drop_text=batch["drop_text"], drop_style=batch["drop_style"])
        _, sigma = task.schedule.alpha_sigma(batch["steps"])
        manual = float((((pred - x0) / sigma.reshape(-1, 1, 1, 1).float()) ** 2).mean())
    assert stats["rec"] == pytest.approx(manual, rel=1e-4)

    out = tmp_path / "run"
    result = train(task, TrainConfig(out_dir=str(out), steps=60, lr=2e-3, warmup=5, eval_every=30, ckpt_every=30,
                                     device="cpu", threads=1, progress=False, plot=False, ema_decay=0.9))
    rows = result.history
    assert np.isfinite(result.train_loss) and rows[-1]["loss"] < rows[0]["loss"]
    assert set(task.test(model)) == {"loss", "rec", "vel"}

    folder = assemble_model(tmp_path / "model", denoiser=result.best, motion_ae=WEIGHTS / "motion_ae",
                            text_gesture=WEIGHTS / "text_gesture", style_encoder=style_dir,
                            style_space=style_dir / "style_space.safetensors")
    audio = load_audio(ROOT / "examples" / "speech" / "hello.wav")
    words = load_transcript(ROOT / "examples" / "speech" / "hello.TextGrid", audio)
    motion, why = generate_diffusion(audio, audio_features(audio), words, "calm teacher; arms: angry",
                                     options=EngineOptions(model_dir=str(folder)))
    assert motion.num_frames == int(np.ceil(audio.duration * 30 - 1e-9)) and np.isfinite(motion.rotations).all()
    assert "keyword" in why  # a folder without a text adapter reads prompts by the catalogue's keywords


def test_fine_tune_starts_from_given_weights_and_pulls_generated_style(smoke_corpus, style_dir, tmp_path) -> None:
    """init_from loads a trained denoiser exactly; the style-consistency term is the frozen style encoder's
    cross-entropy on the predicted window, larger for wrong style labels, and a fine-tune lowers it."""
    from safetensors.torch import load_file

    from gestura.training.models.gesture_diffusion import make_task
    from gestura.training.trainer import TrainConfig, train

    args: dict[str, Any] = {
        "corpus": str(smoke_corpus), "style_dir": str(style_dir), "cache_dir": str(ROOT / ".cache" / "latents"),
        "window": 16, "batch_size": 8, "workers": 1,
        "model": {"group": 8, "heads": 2, "layers": 1, "ff": 32, "lookback": 16}}
    base = train(make_task(**args), TrainConfig(out_dir=str(tmp_path / "base"), steps=20, lr=2e-3, warmup=5,
                                                eval_every=20, ckpt_every=20, device="cpu", threads=1,
                                                progress=False, plot=False))
    task = make_task(**args, init_from=str(base.best), style_loss_weight=1.0)
    model = task.build_model().eval()
    saved = load_file(str(base.best / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())

    batch = task.make_batch(task.val_data, task.val_text, np.random.default_rng(0))
    batch["drop_style"].zero_()
    with torch.no_grad():
        _, right = task.loss(model, batch)
        wrong_ids = (batch["part_style_ids"] + 7) % 25
        _, wrong = task.loss(model, {**batch, "part_style_ids": wrong_ids})
    assert right["style"] < wrong["style"]
    assert right["loss"] == pytest.approx(right["rec"] + right["vel"] + right["style"], rel=1e-5)

    probe = task.make_batch(task.train_data, task.train_text, np.random.default_rng(1))
    probe["drop_style"].zero_()
    tuned = train(task, TrainConfig(out_dir=str(tmp_path / "tuned"), steps=40, lr=2e-3, warmup=2, eval_every=40,
                                    ckpt_every=40, device="cpu", threads=1, progress=False, plot=False))
    with torch.no_grad():
        _, before = task.loss(model, probe)
        model.load_state_dict(load_file(str(tuned.best / "model.safetensors")))
        _, after = task.loss(model, probe)
    assert after["style"] < before["style"]
