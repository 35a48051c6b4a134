"""Train a Gestura model from a config file.

    .venv/bin/python tools/train.py --config training/configs/motion_ae.json [--corpus DIR] [--out runs/NAME]
                                    [--steps N] [--resume | --fresh] [--set train.lr=3e-4 task_args.latent=kl]

Several processes (CPU or GPUs) through torchrun; only rank 0 evaluates and writes:

    torchrun --standalone --nproc_per_node=2 tools/train.py --config training/configs/motion_ae.json

A run folder holds config.json, train_log.csv, eval_log.csv, curves.png and checkpoints/{latest,best}
(safetensors + JSON). By default a run resumes from its latest checkpoint when there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import devload


def _parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="training/configs/*.json")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (sets task_args.corpus)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (sets train.out_dir)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto | cpu | cuda")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="resume", action="store_true", default=True,
                       help="continue from OUT/checkpoints/latest when it exists (default)")
    group.add_argument("--fresh", dest="resume", action="store_false", help="ignore an existing checkpoint")
    parser.add_argument("--test", action="store_true",
                        help="after training, evaluate the best checkpoint on the test split (task.test) and write "
                             "OUT/test_metrics.json")
    parser.add_argument("--test-only", action="store_true", help="no training: only --test on OUT's best checkpoint")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config entries, e.g. train.lr=3e-4 task_args.windows=64")
    args = parser.parse_args(argv)

    devload.load_gestura()
    from gestura.training.trainer import TrainConfig, load_config, make_task, train

    task_name, task_args, config = load_config(args.config)
    train_dict = {f: getattr(config, f) for f in config.__dataclass_fields__}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if section == "train":
            train_dict[name] = _parse_value(value)
        elif section == "task_args":
            task_args[name] = _parse_value(value)
        else:
            parser.error(f"--set {item}: key must start with train. or task_args.")
    if args.corpus is not None:
        task_args["corpus"] = str(args.corpus)
    if args.out is not None:
        train_dict["out_dir"] = str(args.out)
    if args.steps is not None:
        train_dict["steps"] = args.steps
    if args.device is not None:
        train_dict["device"] = args.device
    config = TrainConfig.from_dict(train_dict)
    task = make_task(task_name, **task_args)
    main_rank = os.environ.get("RANK", "0") == "0"
    if not args.test_only:
        result = train(task, config, resume=args.resume)
        if main_rank:
            print(json.dumps({
                "task": task_name, "out_dir": str(result.out_dir), "steps": result.step,
                "start_step": result.start_step, "wall_minutes": round(result.wall_seconds / 60.0, 2),
                "train_loss": result.train_loss, "best_step": result.best_step, "best_metric": result.best_metric,
                "metrics": result.last_metrics,
            }, indent=1))
    if (args.test or args.test_only) and main_rank:
        import time

        import torch

        from gestura.training.checkpoint import load_model

        test = getattr(task, "test", None)
        if test is None:
            parser.error(f"task {task_name} has no test()")
        best = Path(config.out_dir) / "checkpoints" / "best"
        model, ckpt = load_model(best, "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
        started = time.perf_counter()
        with torch.no_grad():
            metrics = test(model)
        out = {"checkpoint": str(best), "step": ckpt.step, "code_version": ckpt.meta.get("code_version"),
               "test_seconds": round(time.perf_counter() - started, 1), "metrics": metrics}
        (Path(config.out_dir) / "test_metrics.json").write_text(json.dumps(out, indent=1))
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
