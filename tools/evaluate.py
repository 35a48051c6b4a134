"""Evaluates Gestura's engines (and diffusion checkpoints) on a corpus's test split and writes a report:
report.md (Markdown), report.json (every figure) and PNG plots and contact sheets.

    .venv/bin/python tools/evaluate.py --corpus /tmp/corpus20 --out docs/eval
    .venv/bin/python tools/evaluate.py --corpus CORPUS --out /tmp/eval --variants gt rule --no-speed
    .venv/bin/python tools/evaluate.py --corpus CORPUS --out /tmp/eval --model-dir runs/diffusion/checkpoints/best

Baselines in every run: ground truth, the rule-based engine, the diffusion engine at default settings, with
a 1000-step DDPM sampler (on a documented subset of clips: slow) and with the style ignored (strength 0).
An engine that cannot run is reported as unavailable, with the reason. See training/evaluate/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import devload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus folder (tools/corpus.py build)")
    parser.add_argument("--build-corpus", type=float, default=None, metavar="HOURS",
                        help="build the corpus first (tools/corpus.py build --hours HOURS --seed --corpus-seed) when "
                             "--corpus holds none yet: one command from a fresh clone")
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="report folder (report.md, report.json, PNGs)")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="gt rule rule_nostyle diffusion diffusion_ddpm diffusion_nostyle "
                             "(default: all but rule_nostyle)")
    parser.add_argument("--model-dir", default="", help="checkpoint of the diffusion variants (default: shipped)")
    parser.add_argument("--checkpoint", action="append", default=[], dest="checkpoints",
                        help="another diffusion checkpoint to evaluate as its own variant (repeatable)")
    parser.add_argument("--clips", type=int, default=None, help="first N test clips (default: all)")
    parser.add_argument("--slow-clips", type=int, default=8, help="clips of the DDPM subset")
    parser.add_argument("--ddpm-steps", type=int, default=1000, help="steps of the DDPM baseline")
    parser.add_argument("--isolation-clips", type=int, default=24, help="clips of the per-part prompt test")
    parser.add_argument("--retrieval-batches", type=int, default=200)
    parser.add_argument("--fgd-checkpoint", default="", help="FGD extractor (default: training/weights/fgd)")
    parser.add_argument("--fgd-pool-hours", type=float, default=3.0, help="train clips for the FGD reference")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed and cost figures")
    parser.add_argument("--speed-lengths", type=float, nargs="+", default=[10.0, 30.0, 120.0])
    parser.add_argument("--speed-steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--ddpm-repeats", type=int, default=1)
    parser.add_argument("--no-register", action="store_true", help="skip the add-on register timing (needs bpy)")
    parser.add_argument("--no-key-writing", action="store_true", help="skip tools/bench_generate.py (needs bpy)")
    parser.add_argument("--sheets", type=int, default=4, help="clips drawn side by side")
    parser.add_argument("--no-gif", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (1 on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--title", default="Gestura evaluation report")
    args = parser.parse_args(argv)

    devload.load_gestura()
    if args.build_corpus and not (args.corpus / "manifest.json").is_file():
        from gestura.training.corpus.build import CorpusSettings, build_corpus

        t = time.perf_counter()
        print(f"building the corpus: {args.build_corpus:g} h, seed {args.corpus_seed} -> {args.corpus}", flush=True)
        build_corpus(CorpusSettings(hours=args.build_corpus, seed=args.corpus_seed), args.corpus)
        print(f"corpus built in {(time.perf_counter() - t) / 60:.1f} min", flush=True)
    from gestura.training.evaluate.engines import DEFAULT_VARIANTS
    from gestura.training.evaluate.report import write_report
    from gestura.training.evaluate.runner import EvalConfig, run_evaluation

    command = ".venv/bin/python tools/evaluate.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    cfg = EvalConfig(
        corpus=str(args.corpus), out=str(args.out), variants=tuple(args.variants or DEFAULT_VARIANTS),
        model_dirs=tuple(args.checkpoints), model_dir=args.model_dir, clips=args.clips, slow_clips=args.slow_clips,
        ddpm_steps=args.ddpm_steps,
        isolation_clips=args.isolation_clips, retrieval_batches=args.retrieval_batches,
        fgd_checkpoint=args.fgd_checkpoint, fgd_pool_hours=args.fgd_pool_hours, speed=not args.no_speed,
        speed_lengths=tuple(args.speed_lengths), speed_steps=tuple(args.speed_steps), speed_repeats=args.speed_repeats,
        ddpm_repeats=args.ddpm_repeats, register=not args.no_register, key_writing=not args.no_key_writing,
        sheets=args.sheets, gif=not args.no_gif, threads=args.threads, seed=args.seed, command=command,
    )
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    results = run_evaluation(cfg, log=log)
    paths = write_report(results, args.out, title=args.title)
    brief = {n: {k: v["summary"].get(k) for k in ("fgd", "beat_alignment_0.3", "jerk", "style_accuracy")}
             if v.get("available") else {"unavailable": v.get("reason")} for n, v in results["variants"].items()}
    print(json.dumps({"report": str(paths["markdown"]), "wall_s": round(time.perf_counter() - started, 1),
                      "variants": brief}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
