"""Compares two evaluation reports (tools/evaluate.py's report.json): does a rerun reproduce the figures?

    .venv/bin/python tools/compare_reports.py docs/eval/report.json /tmp/eval-rerun/report.json

Quality figures (FGD, beat alignment, jerk, foot sliding, diversity, style accuracies, retrieval, per-part
isolation, target verdicts) come from seeded generation on the same clips, so a rerun on the same code, corpus
and model should give them again up to floating-point noise: they are compared with a tight tolerance.
Timings (real-time factors, register and key-writing times) move with the machine's load: they are compared
with a wide relative tolerance and reported, but only fail the comparison with ``--strict-speed``.
Prints one line per figure that differs and a summary; exits 1 when a quality figure (or, with
``--strict-speed``, a timing) is outside its tolerance, 2 when the reports are not comparable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUALITY_KEYS = ("fgd", "diversity", "beat_alignment_0.3", "beat_alignment_0.1", "jerk", "foot_slide_cm_s")


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def quality_figures(report: dict[str, Any]) -> Iterator[tuple[str, float | str]]:
    """(name, value) of every figure that seeded generation fixes."""
    for name, v in sorted((report.get("variants") or {}).items()):
        if not v.get("available"):
            continue
        s = v.get("summary") or {}
        for k in QUALITY_KEYS:
            if isinstance(s.get(k), int | float):
                yield f"{name}.{k}", float(s[k])
        for k, val in sorted((s.get("style_accuracy") or {}).items()):
            if isinstance(val, float):
                yield f"{name}.style_accuracy.{k}", val
        for group, val in sorted((s.get("per_part_accuracy") or {}).items()):
            if isinstance(val, dict):
                for k, x in sorted(val.items()):
                    if isinstance(x, float):
                        yield f"{name}.per_part_accuracy.{group}.{k}", x
        for k in ("R@1", "R@5"):
            if isinstance((v.get("retrieval") or {}).get(k), float):
                yield f"{name}.retrieval.{k}", float(v["retrieval"][k])
    for name, iso in sorted((report.get("part_isolation") or {}).items()):
        for k in ("max_leak_ratio", "max_crosstalk"):
            if isinstance(iso.get(k), int | float):
                yield f"part_isolation.{name}.{k}", float(iso[k])
    for name, t in sorted((report.get("targets") or {}).items()):
        for check in t.get("checks", []):
            if check.get("id", "").startswith("rtf"):
                continue  # a timing: compared with the speed figures
            yield f"targets.{name}.{check.get('id')}", str(check.get("status"))


def speed_figures(report: dict[str, Any]) -> Iterator[tuple[str, float]]:
    speed = report.get("speed") or {}
    for run in speed.get("runs") or []:
        if run.get("available") and isinstance(run.get("rtf"), int | float):
            yield f"speed.{run.get('label', run.get('engine'))}.{run.get('seconds'):g}s.rtf", float(run["rtf"])
    for k, v in sorted((speed.get("ratios") or {}).items()):
        if isinstance(v, int | float):
            yield f"speed.ratio.{k}", float(v)
    reg = _get(speed, ("register", "register_s_median"))
    if isinstance(reg, int | float):
        yield "speed.register_s", float(reg)
    for k in ("write_keys_fcurve_s", "keyframe_insert_over_fcurve"):
        v = _get(speed, ("key_writing", k))
        if isinstance(v, int | float):
            yield f"speed.key_writing.{k}", float(v)


def close(a: float, b: float, rel: float, abs_tol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def compare(a: dict[str, Any], b: dict[str, Any], *, rel: float, abs_tol: float,
            speed_rel: float) -> dict[str, Any]:
    qa, qb = dict(quality_figures(a)), dict(quality_figures(b))
    sa, sb = dict(speed_figures(a)), dict(speed_figures(b))
    quality_diff, speed_diff = [], []
    for k in sorted(set(qa) | set(qb)):
        x, y = qa.get(k), qb.get(k)
        same = (x == y) if isinstance(x, str) or isinstance(y, str) or x is None or y is None else \
            close(float(x), float(y), rel, abs_tol)
        if not same:
            quality_diff.append((k, x, y))
    for k in sorted(set(sa) & set(sb)):
        if not close(sa[k], sb[k], speed_rel, 0.0):
            speed_diff.append((k, sa[k], sb[k]))
    return {"quality_compared": len(set(qa) | set(qb)), "quality_diff": quality_diff,
            "speed_compared": len(set(sa) & set(sb)), "speed_diff": speed_diff}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--rel", type=float, default=0.01, help="relative tolerance of quality figures (default 1%%)")
    p.add_argument("--abs", type=float, default=0.005, dest="abs_tol",
                   help="absolute tolerance of quality figures (default 0.005)")
    p.add_argument("--speed-rel", type=float, default=0.3, help="relative tolerance of timings (default 30%%)")
    p.add_argument("--strict-speed", action="store_true", help="timings outside their tolerance fail too")
    args = p.parse_args(argv)
    try:
        a, b = (json.loads(path.read_text()) for path in (args.first, args.second))
    except (OSError, ValueError) as exc:
        print(f"compare_reports: {exc}", file=sys.stderr)
        return 2
    for key in ("manifest_sha256", "evaluated_clips"):
        if _get(a, ("corpus", key)) != _get(b, ("corpus", key)):
            print(f"compare_reports: the reports evaluated different data (corpus {key} differs)", file=sys.stderr)
            return 2
    r = compare(a, b, rel=args.rel, abs_tol=args.abs_tol, speed_rel=args.speed_rel)
    print(f"{args.first}: code {a.get('code_version')}, {a.get('started')}")
    print(f"{args.second}: code {b.get('code_version')}, {b.get('started')}")
    for k, x, y in r["quality_diff"]:
        print(f"  quality differs: {k}: {x} vs {y}")
    for k, x, y in r["speed_diff"]:
        print(f"  timing differs by more than {args.speed_rel:.0%}: {k}: {x:g} vs {y:g}")
    ok = not r["quality_diff"] and not (args.strict_speed and r["speed_diff"])
    print(f"{r['quality_compared'] - len(r['quality_diff'])}/{r['quality_compared']} quality figures within "
          f"{args.rel:.0%} (or {args.abs_tol:g}); {r['speed_compared'] - len(r['speed_diff'])}/{r['speed_compared']} "
          f"timings within {args.speed_rel:.0%}: {'MATCH' if ok else 'DIFFER'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
