"""The procedural speech-gesture corpus: build it, and report on it.

    .venv/bin/python tools/corpus.py build --hours 20 --out data/corpus --seed 0 [--workers 2]
    .venv/bin/python tools/corpus.py report --corpus data/corpus --out docs/corpus

`build` renders espeak-ng speech with exact word timings and rule-based motion in the catalogue's
styles, sharded by split, with a manifest; the same seed gives byte-identical shards. `report` writes
Markdown + PNG + JSON: per-style statistics, a style classifier's test accuracy, per-part style
statistics of mixed clips, beat alignment (sigma 0.3 s), jerk, and a contact sheet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import devload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render a corpus")
    b.add_argument("--hours", type=float, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    b.add_argument("--clips-per-shard", type=int, default=48)
    r = sub.add_parser("report", help="statistics, style classifier, beat alignment, contact sheet")
    r.add_argument("--corpus", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    devload.load_gestura()
    if args.command == "build":
        from tqdm import tqdm

        from gestura.training.corpus.build import CorpusSettings, build_corpus

        settings = CorpusSettings(hours=args.hours, seed=args.seed, clips_per_shard=args.clips_per_shard)
        started = time.perf_counter()
        bars: list[tqdm] = []  # made at the first report, when the shard count is known

        def progress(done: int, total: int, seconds: float) -> None:
            if not bars:
                bars.append(tqdm(total=total, unit="shard", desc="corpus", dynamic_ncols=True))
            bar = bars[0]
            bar.n = done
            minutes = (time.perf_counter() - started) / 60.0
            bar.set_postfix(hours=f"{seconds / 3600:.2f}", h_per_min=f"{seconds / 3600 / max(minutes, 1e-9):.2f}")
            bar.refresh()

        manifest = build_corpus(settings, args.out, workers=args.workers, progress=progress)
        for bar in bars:
            bar.close()
        hours = sum(s["hours"] for s in manifest["splits"].values())
        minutes = manifest["build_seconds"] / 60.0
        print(json.dumps({"out": str(args.out), "splits": manifest["splits"], "hours": round(hours, 3),
                          "build_minutes": round(minutes, 2),
                          "hours_per_minute": round(hours / max(minutes, 1e-9), 3)}))
        return 0
    from gestura.training.corpus.report import write_report

    summary = write_report(args.corpus, args.out)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
