"""Style accuracy of a diffusion model against the style strength (classifier-free guidance), on the corpus's
validation split: the figures that choose a model's default strength without looking at the test split.

    .venv/bin/python tools/tune_guidance.py --corpus /tmp/corpus20 --model-dir models/starter \
        --strengths 1 2 3 4 [--smoothings 0 0.7] [--style-guidances 0 1] [--clips 100] [--steps 8]

The style classifier is the evaluation's (training/evaluate/quality.py: logistic regression on 16 motion
statistics of the train split's pure clips; its features are cached in .cache/). Each pure validation clip is
generated from its recorded description (in-vocabulary) and from a held-out description of the same style,
with the same seed; the table gives style accuracy, wrist speed and wrist jerk against ground truth, and the FGD of
the in-vocabulary takes against these clips' ground truth, for each strength, output smoothing (the Gaussian
low-pass on the decoded motion, in frames) and style guidance; --json adds per-style ratios of wrist speed, jerk,
hold fraction and stroke rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import devload
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def train_features(corpus: Path) -> tuple[list[dict[str, float]], list[int]]:
    """Motion statistics of the train split's pure clips, cached per corpus manifest."""
    import hashlib

    from gestura.training.corpus.report import motion_features
    from gestura.training.evaluate.data import iter_train_clips

    key = hashlib.sha256((corpus / "manifest.json").read_bytes()).hexdigest()[:16]
    cache = ROOT / ".cache" / f"style-features-{key}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        return data["features"], data["ids"]
    feats, ids = [], []
    for clip in iter_train_clips(corpus):
        if not clip["mixed"]:
            feats.append(motion_features(clip["rotations"], clip["root"]))
            ids.append(int(clip["style_id"]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"features": feats, "ids": ids}))
    return feats, ids


def style_ratio(got: list[dict[str, float]], gt: list[dict[str, float]], want: np.ndarray, key: str, style: int
                ) -> float:
    """Mean of one motion statistic over the generated clips of a style / over their ground truth."""
    mine = np.mean([g[key] for g, w in zip(got, want, strict=True) if w == style])
    return round(float(mine / np.mean([g[key] for g, w in zip(gt, want, strict=True) if w == style])), 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--model-dir", default="", help="model folder (default: the shipped starter model)")
    p.add_argument("--strengths", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    p.add_argument("--smoothings", type=float, nargs="+", default=[-1.0],
                   help="output smoothing in frames (-1: the model's default)")
    p.add_argument("--style-guidances", type=float, nargs="+", default=[-1.0],
                   help="sampling-time style guidance steps (-1: the model's default)")
    p.add_argument("--clips", type=int, default=100, help="pure validation clips, spread over the styles")
    p.add_argument("--steps", type=int, default=0, help="sampler steps (0: the model's default)")
    p.add_argument("--split", default="val")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    devload.load_gestura()
    from gestura.inference.pipeline import EngineOptions, generate_motion
    from gestura.inference.style_catalog import STYLE_CATALOG
    from gestura.training.corpus.report import motion_features
    from gestura.training.evaluate.data import load_clips, pick_spread, style_description
    from gestura.training.evaluate.engines import engine_seed
    from gestura.training.evaluate.quality import StyleClassifiers
    from gestura.training.metrics import FGDExtractor, fgd_from_embeddings

    names = [s.name for s in STYLE_CATALOG]
    t0 = time.perf_counter()
    feats, ids = train_features(args.corpus)
    classifiers = StyleClassifiers.fit(feats, ids)
    clips = pick_spread(load_clips(args.corpus, args.split), args.clips, pure_only=True)
    gt = [motion_features(c.rotations, c.root) for c in clips]
    gt_acc = float(np.mean(classifiers.predict(gt) == np.array([c.style_id for c in clips])))
    print(f"{len(clips)} pure {args.split} clips, classifier on ground truth {gt_acc:.1%} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    want = np.array([c.style_id for c in clips])
    extractor = FGDExtractor.load()
    gt_emb = extractor.embed([(c.rotations, c.root) for c in clips])
    rows = []
    grid = [(a, b, c) for a in args.strengths for b in args.smoothings for c in args.style_guidances]
    for strength, smoothing, steer in grid:
        t = time.perf_counter()
        result: dict[str, object] = {"strength": strength, "smoothing": smoothing, "style_guidance": steer}
        for pool in ("in_vocab", "held_out"):
            got, made = [], []
            for c in clips:
                rng = np.random.default_rng([c.seed, 3])
                prompt = c.description if (pool == "held_out") == c.held_out else \
                    style_description(c.style_id, pool == "held_out", rng)
                opts = EngineOptions(strength=strength, steps=args.steps, model_dir=args.model_dir,
                                     smoothing=smoothing, style_guidance=steer)
                motion, _ = generate_motion(c.audio_obj(), c.word_objs(), prompt, engine="diffusion",
                                            seed=engine_seed(c, 0), options=opts)
                got.append(motion_features(motion.rotations, motion.root))
                if pool == "in_vocab":
                    made.append((motion.rotations, motion.root))
            pred = classifiers.predict(got)
            result[pool] = float(np.mean(pred == want))
            result[f"{pool}_confusions"] = sorted(
                f"{names[w]}->{names[g]}" for w, g in zip(want.tolist(), pred.tolist(), strict=True) if w != g)
            if pool == "in_vocab":
                for key in ("wrist_speed", "jerk"):
                    result[f"{key}_ratio"] = float(np.mean([g[key] for g in got]) / np.mean([g[key] for g in gt]))
                result["fgd"] = float(fgd_from_embeddings(gt_emb, extractor.embed(made)))
                # Per style: mean wrist speed, jerk, hold fraction and stroke rate, generated / ground truth.
                result["by_style"] = {names[k]: {key: style_ratio(got, gt, want, key, k) for key in
                                                 ("wrist_speed", "jerk", "hold_fraction", "gesture_rate")}
                                      for k in sorted(set(want.tolist()))}
        result["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(result)
        print(json.dumps(result), flush=True)
    print("\n| strength | smoothing | style guidance | in-vocabulary | held-out | wrist speed / GT | jerk / GT "
          "| FGD vs GT |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        smooth = "default" if r["smoothing"] < 0 else f"{r['smoothing']:g}"
        steer = "default" if r["style_guidance"] < 0 else f"{r['style_guidance']:g}"
        print(f"| {r['strength']:g} | {smooth} | {steer} | {r['in_vocab']:.1%} | {r['held_out']:.1%} "
              f"| {r['wrist_speed_ratio']:.2f} | {r['jerk_ratio']:.2f} | {r['fgd']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"model_dir": args.model_dir or "models/starter", "split": args.split,
                                         "clips": len(clips), "ground_truth": gt_acc, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
