"""Train and assemble the shipped diffusion model (models/starter/) from a corpus, end to end.

    .venv/bin/python tools/build_starter_model.py --corpus /tmp/corpus20 --out models/starter [--runs runs]
        [--diffusion-steps 8000] [--time-limit-min 70] [--skip-style] [--skip-diffusion]

Stages (each resumable; a finished stage is reused):
1. motion style encoder  (training/configs/style_encoder.json)    -> runs/style_encoder, style space exported
2. denoiser               (training/configs/gesture_diffusion.json) -> runs/gesture_diffusion
2b. with --style-tune: a style fine-tune (training/configs/gesture_diffusion_style.json) -> runs/gesture_diffusion_style
    (not in the shipped model: it raises in-vocabulary style accuracy but costs realism, docs/DIFFUSION.md)
3. assemble models/starter: denoiser + the committed motion autoencoder and gesture-transcript embedding
   (training/weights/) + style encoder + style space
4. text adapter for the bundled MiniLM backbone (tools/fit_text_adapter.py), when that tool is present
The motion autoencoder and the embedding are trained separately (docs/TRAINING.md, docs/EMBEDDING.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import devload

ROOT = Path(__file__).resolve().parents[1]


def run_train(config: str, corpus: Path, out: Path, extra: list[str]) -> None:
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "--config", config, "--corpus", str(corpus),
           "--out", str(out), "--test", *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "models" / "starter")
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--diffusion-steps", type=int, default=None)
    p.add_argument("--time-limit-min", type=float, default=None)
    p.add_argument("--skip-style", action="store_true", help="reuse RUNS/style_encoder as it is")
    p.add_argument("--skip-diffusion", action="store_true", help="reuse RUNS/gesture_diffusion as it is")
    p.add_argument("--style-tune", action="store_true",
                   help="add the style fine-tune stage (use --smoothing 1.15 with it; docs/DIFFUSION.md)")
    p.add_argument("--skip-style-tune", action="store_true", help="reuse RUNS/gesture_diffusion_style as it is")
    # A light Gaussian low-pass (frames) on the decoded motion: removes the jitter the denoiser leaves (wrist
    # jerk 1.44x ground truth unsmoothed, 0.94x at 0.7) within the noise of style accuracy; chosen on the
    # validation split: tools/tune_guidance.py --strengths 2 --smoothings 0 0.5 0.7 1 (docs/DIFFUSION.md).
    p.add_argument("--smoothing", type=float, default=0.7)
    # Sampling-time style guidance (inference/diffusion_engine.steer_to_style): validation split, 197 pure clips,
    # style accuracy 69.5 -> 81.2 % in-vocabulary, 56.9 -> 69.0 % held out, jerk 0.92 -> 1.16x (docs/DIFFUSION.md).
    p.add_argument("--style-guidance", type=float, default=1.0)
    args = p.parse_args(argv)
    devload.load_gestura()
    from gestura.training.checkpoint import load_model
    from gestura.training.diffusion_bundle import assemble_model
    from gestura.training.models.style_encoder import export_style_space, make_task

    times: dict[str, float] = {}
    style_run = args.runs / "style_encoder"
    style_best = style_run / "checkpoints" / "best"
    t = time.perf_counter()
    if not args.skip_style:
        run_train("training/configs/style_encoder.json", args.corpus, style_run, [])
        model, _ = load_model(style_best)
        export_style_space(model, make_task(corpus=str(args.corpus)), style_best)  # type: ignore[arg-type]
    times["style_encoder_s"] = time.perf_counter() - t

    t = time.perf_counter()
    diff_run = args.runs / "gesture_diffusion"
    if not args.skip_diffusion:
        settings = [f"task_args.style_dir={style_best}"]
        if args.time_limit_min:
            settings.append(f"train.time_limit_min={args.time_limit_min}")
        extra = ["--steps", str(args.diffusion_steps)] if args.diffusion_steps else []
        run_train("training/configs/gesture_diffusion.json", args.corpus, diff_run, [*extra, "--set", *settings])
    times["diffusion_s"] = time.perf_counter() - t

    tune_run = args.runs / "gesture_diffusion_style"
    if args.style_tune:
        t = time.perf_counter()
        if not args.skip_style_tune:
            settings = [f"task_args.style_dir={style_best}", f"task_args.init_from={diff_run / 'checkpoints' / 'best'}"]
            run_train("training/configs/gesture_diffusion_style.json", args.corpus, tune_run, ["--set", *settings])
        times["style_tune_s"] = time.perf_counter() - t

    weights = ROOT / "training" / "weights"
    test_metrics = {}
    denoiser_run = tune_run if args.style_tune else diff_run
    for name, run in (("style_encoder", style_run), ("denoiser", denoiser_run)):
        path = run / "test_metrics.json"
        if path.is_file():
            test_metrics[name] = json.loads(path.read_text())
    assemble_model(args.out, denoiser=denoiser_run / "checkpoints" / "best", motion_ae=weights / "motion_ae",
                   text_gesture=weights / "text_gesture", style_encoder=style_best,
                   style_space=style_best / "style_space.safetensors",
                   defaults={"smoothing": args.smoothing, "style_guidance": args.style_guidance},
                   provenance={"corpus": str(args.corpus), "command": " ".join(sys.argv),
                               "wall_time_s": times, "test_metrics": test_metrics})
    fit = ROOT / "tools" / "fit_text_adapter.py"
    if fit.is_file():
        cmd = [sys.executable, str(fit), "--backbone", "minilm", "--space", str(args.out / "style_space.safetensors"),
               "--out", str(args.out / "text_adapter_minilm")]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    print(json.dumps({"model": str(args.out), "wall_time_s": times}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
