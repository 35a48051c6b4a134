"""Benchmark of the diffusion engine against its baselines, all measured in this run (issue 5, item 6).

    .venv/bin/python tools/bench_diffusion.py --corpus /tmp/corpus20 [--clips N] [--repeats 3] [--out DIR]

Prints:
- real-time factor on the CPU for 10, 30 and 120 s of speech: the diffusion engine at default settings, the
  same model with a 1000-step DDPM sampler (on the 10 s case only: it is slow), and the rule-based engine;
  peak memory of each (a fresh process per configuration);
- on the corpus test split: FGD (with the extractor and its sha256), beat alignment, diversity, jerk, foot
  sliding, style accuracy for in-vocabulary and held-out descriptions, per-part style accuracy and
  per-part prompt isolation, for ground truth, the rule engine, the diffusion engine and its no-style
  ablation, plus the FGD between the corpus's train and test splits;
- PASS / FAIL for each target of issue 5.

An engine that cannot run is reported with the reason (its targets are "n/a"). --out also writes the
report (training/evaluate/report.py) of this run. Exit code 0 whatever the verdicts (1 on an error).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import devload


def _f(x: Any, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_diffusion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=None, help="first N test clips (default: the whole split)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per speed configuration (median)")
    parser.add_argument("--lengths", type=float, nargs="+", default=[10.0, 30.0, 120.0])
    parser.add_argument("--ddpm-steps", type=int, default=1000)
    parser.add_argument("--isolation-clips", type=int, default=24)
    parser.add_argument("--retrieval-batches", type=int, default=100)
    parser.add_argument("--model-dir", default="", help="diffusion checkpoint (default: the shipped starter model)")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the report of this run here")
    args = parser.parse_args(argv)

    devload.load_gestura()
    from gestura.training.evaluate.report import write_report
    from gestura.training.evaluate.runner import EvalConfig, run_evaluation
    from gestura.training.evaluate.speed import run_speed
    from gestura.training.evaluate.targets import evaluate_targets

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    command = ".venv/bin/python tools/bench_diffusion.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.no_quality:
        results: dict[str, Any] = {"variants": {}}
        results["speed"] = run_speed(args.corpus, lengths=tuple(args.lengths), steps=(), ddpm_steps=args.ddpm_steps,
                                     repeats=args.repeats, threads=args.threads, model_dir=args.model_dir,
                                     register=False, key_writing=False, log=log)
        results["targets"] = {"diffusion": evaluate_targets(results)}
    else:
        cfg = EvalConfig(
            corpus=str(args.corpus), out=str(args.out or "/tmp/gestura_bench_diffusion"),
            variants=("gt", "rule", "diffusion", "diffusion_nostyle"), model_dir=args.model_dir, clips=args.clips,
            isolation_clips=args.isolation_clips, retrieval_batches=args.retrieval_batches, speed=True,
            speed_lengths=tuple(args.lengths), speed_steps=(), speed_repeats=args.repeats, register=False,
            key_writing=False, sheets=0, gif=False, threads=args.threads,
            command=command,
        )
        results = run_evaluation(cfg, log=log)
        if args.out:
            write_report(results, args.out, title="Gestura diffusion benchmark")
    print_results(results, args.ddpm_steps)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    return 0


def print_results(r: dict[str, Any], ddpm_steps: int) -> None:
    sp = r.get("speed", {})
    print(f"\n== Speed (CPU, {sp.get('threads')} thread(s), median of {sp.get('repeats')} runs, fresh process each; "
          f"load average {sp.get('load_average_at_start', [math.nan])[0]:.1f} on {sp.get('cpu_count')} cores)")
    print(f"{'engine':32s} {'audio s':>8s} {'median s':>9s} {'x real time':>12s} {'peak RSS MB':>12s} "
          f"{'+engine':>7s} {'+run':>6s} {'first call s':>13s}")
    for x in sp.get("runs", []):
        if x.get("available"):
            print(f"{x['label']:32s} {x['audio_s']:8.0f} {x['median_s']:9.3f} {x['rtf']:11.1f}x "
                  f"{x['peak_rss_mb']:12.0f} {x['peak_rss_increase_mb']:7.0f} "
                  f"{_f(x.get('generation_peak_increase_mb'), '6.0f')} {x['first_call_s']:13.2f}  "
                  f"({x['device']})")
        else:
            reason = str(x.get("reason", "")).strip().splitlines()
            print(f"{x['label']:32s} {x['seconds']:8.0f}  unavailable: {reason[-1] if reason else ''}")
    if sp.get("diffusion_unavailable"):
        print(f"diffusion engine unavailable: {sp['diffusion_unavailable']}")
    print(f"(DDPM {ddpm_steps} steps: measured on the {sp.get('runs', [{}])[0].get('seconds', 10):g} s case only)")
    for k, v in sp.get("ratios", {}).items():
        print(f"  ratio {k}: {v}")

    if r.get("variants"):
        ex = r.get("fgd_extractor", {})
        print(f"\n== Quality on the test split ({r['corpus']['evaluated_clips']} clips, "
              f"{r['corpus']['evaluated_hours']:.2f} h); FGD extractor {ex.get('checkpoint')} "
              f"sha256 {str(ex.get('model_safetensors_sha256', ''))[:16]}")
        ref = r.get("fgd_reference", {})
        print(f"FGD train vs test (reference): subsets of the test size {_f(ref.get('subset_vs_test_mean'), '.2f')} "
              f"+- {_f(ref.get('subset_vs_test_sd'), '.2f')}; {ref.get('pool_hours')} h pool "
              f"{_f(ref.get('pool_vs_test'), '.2f')}")
        print(f"{'variant':28s} {'FGD':>7s} {'div':>6s} {'BA.3':>6s} {'BA.1':>6s} {'jerk':>6s} {'slide':>6s} "
              f"{'acc-in':>7s} {'acc-ho':>7s} {'arms':>6s} {'head':>6s} {'torso':>6s} {'R@1':>6s}")
        for v in r["variants"].values():
            if not v.get("available"):
                print(f"{v['variant']['label']:28s} unavailable: {v.get('reason')}")
                continue
            s = v["summary"]
            acc, pp = s.get("style_accuracy", {}), s.get("per_part_accuracy", {})
            ret = v.get("retrieval") or {}
            print(f"{v['variant']['label']:28s} {_f(s.get('fgd'), '7.2f')} {_f(s.get('diversity'), '6.1f')} "
                  f"{_f(s.get('beat_alignment_0.3'), '6.3f')} {_f(s.get('beat_alignment_0.1'), '6.3f')} "
                  f"{_f(s.get('jerk'), '6.1f')} {_f(s.get('foot_slide_cm_s'), '6.2f')} "
                  f"{_f(acc.get('in_vocabulary'), '7.1%')} {_f(acc.get('held_out'), '7.1%')} "
                  + " ".join(_f(pp.get(g, {}).get("accuracy"), "6.1%") for g in ("arms", "head", "torso"))
                  + f" {_f(ret.get('R@1'), '6.1%')}")
        for n, iso in r.get("part_isolation", {}).items():
            print(f"per-part prompts, {n}: worst cross-talk {_f(iso.get('max_crosstalk'), '.2f')}, worst leak ratio "
                  f"{_f(iso.get('max_leak_ratio'), '.2f')} ({iso['clips']} clips)")

    for name, tg in r.get("targets", {}).items():
        why = f" (unavailable: {tg['unavailable']})" if tg.get("unavailable") else ""
        print(f"\n== Issue 5 targets: {name}{why}")
        for c in tg["checks"]:
            print(f"  {c['status']:5s} {c['what']}: {_f(c.get('value'), '.3f')} (target {c['target']})")
    print("\n" + json.dumps({"targets": {n: {c["id"]: c["status"] for c in t["checks"]}
                                        for n, t in r.get("targets", {}).items()}}))


if __name__ == "__main__":
    sys.exit(main())
