"""Fit a text adapter (text backbone -> the style space) and report its style accuracy.

    .venv/bin/python tools/fit_text_adapter.py --backbone minilm \\
        --space models/starter/style_space.safetensors --out models/starter/text_adapter_minilm
    .venv/bin/python tools/fit_text_adapter.py --backbone openclip:ViT-B-32:/path/open_clip_model.safetensors \\
        --space models/starter/style_space.safetensors --out models/starter/text_adapter_clip_b32

--backbone: ``minilm`` (bundled, offline) or ``openclip:<arch>[:<weights file or cached tag>]`` (nothing is
downloaded). --space: the style space (``style_space.safetensors`` with its JSON beside it), or ``synthetic`` for
random unit targets over the catalogue's texts (development). --out: a folder (model.safetensors + adapter.json)
or a ``.safetensors`` file (the JSON beside it). Prints top-1 style accuracy on the training descriptions and on
the held-out ones, the backbone load time and the wall time; writes the figures into the adapter's JSON (and with
--report, into a JSON file of their own).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import devload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fit_text_adapter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="minilm", help="minilm | openclip:<arch>[:<weights>]")
    parser.add_argument("--space", required=True, help="style_space.safetensors, or 'synthetic'")
    parser.add_argument("--out", type=Path, required=True, help="output folder or .safetensors file")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-extras", action="store_true", help="do not train on the catalogue's labels/synonyms")
    parser.add_argument("--no-augment", action="store_true", help="descriptions only, no templates or pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--report", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    devload.load_gestura()
    import torch

    torch.set_num_threads(max(1, args.threads))
    from gestura.inference.errors import GesturaError
    from gestura.inference.text_style import load_backbone, save_adapter
    from gestura.training.text_adapter import FitConfig, fit_text_adapter, load_style_space, synthetic_style_space

    try:
        space = synthetic_style_space() if args.space == "synthetic" else load_style_space(args.space)
        t0 = time.perf_counter()
        backbone = load_backbone(args.backbone)
        load_s = time.perf_counter() - t0
        print(f"backbone {backbone.name} ({backbone.dim}-d) loaded in {load_s:.2f} s", flush=True)
        cfg = FitConfig(seed=args.seed, extras=not args.no_extras, augment=not args.no_augment)
        if args.steps is not None:
            cfg.steps = args.steps
        result = fit_text_adapter(space, backbone, cfg, log=lambda m: print(m, flush=True))
    except GesturaError as exc:
        print(f"fit_text_adapter: {exc}", file=sys.stderr)
        return 2
    report = result.report
    report["backbone_load_seconds"] = round(load_s, 2)
    report["command_wall_seconds"] = round(time.perf_counter() - started, 2)
    result.adapter.meta["training"] = report
    weights, meta = save_adapter(result.adapter, args.out)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    tr, ho = report["train_descriptions"], report["held_out"]
    print(f"train descriptions: top-1 {tr['top1']:.1%} of {tr['n']} (mean cosine to targets {tr['cos']:.3f})")
    print(f"held-out descriptions: top-1 {ho['top1']:.1%}, top-3 {ho['top3']:.1%} of {ho['n']} (mean cosine "
          f"{ho['cos']:.3f})")
    for err in report["held_out_errors"]:
        print(f"  missed: {err['text']!r} ({err['style']})")
    print(f"backbone load {load_s:.2f} s, encoding {report['encode_seconds']:.1f} s, fitting "
          f"{report['fit_seconds']:.1f} s, wall {report['command_wall_seconds']:.1f} s "
          f"({torch.get_num_threads()} torch thread(s))")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
