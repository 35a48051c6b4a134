"""One evaluation run: every variant on the test split, the reference figures, speed, pictures; returns
the JSON-able results that report.py turns into Markdown and plots."""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import EvalClip, clip_prompt, load_clips, part_prompt, pick_spread, style_description
from .engines import DEFAULT_VARIANTS, Variant, builtin_variants, checkpoint_variant, generate
from .quality import (
    PART_FEATURES,
    PROMPTED_PARTS,
    StyleClassifiers,
    VariantData,
    audio_onsets,
    clip_metrics,
    describe_extractor,
    fgd_reference,
    part_change_deg,
    retrieval,
    scan_train,
    summarise,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EvalConfig:
    corpus: str
    out: str
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    model_dirs: tuple[str, ...] = ()  # more diffusion checkpoints, each a variant
    model_dir: str = ""  # the checkpoint of the built-in diffusion variants ("" = the shipped starter model)
    clips: int | None = None  # None: the whole test split
    slow_clips: int = 8  # the documented subset for slow samplers (DDPM 1000 steps)
    ddpm_steps: int = 1000  # steps of the DDPM baseline (quality and speed)
    isolation_clips: int = 24  # pure clips for the per-part prompt isolation test
    retrieval_batches: int = 200
    retrieval_checkpoint: str = ""  # "" = training/weights/text_gesture
    fgd_checkpoint: str = ""  # "" = training/weights/fgd ($GESTURA_FGD_CHECKPOINT)
    fgd_pool_hours: float = 3.0
    fgd_subsets: int = 5
    speed: bool = True
    speed_lengths: tuple[float, ...] = (10.0, 30.0, 120.0)
    speed_steps: tuple[int, ...] = (5, 10, 20, 50)
    speed_repeats: int = 3
    ddpm_repeats: int = 1
    speed_ddpm: bool = True  # time the DDPM baseline too (slow)
    register: bool = True
    key_writing: bool = True
    sheets: int = 4
    gif: bool = True
    threads: int = 1
    seed: int = 0
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=False, timeout=20)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=False, timeout=20).stdout.strip()
        return out.stdout.strip() + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _variants(cfg: EvalConfig) -> list[Variant]:
    table = builtin_variants(cfg.model_dir, cfg.ddpm_steps)
    unknown = [v for v in cfg.variants if v not in table]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {', '.join(table)}")
    out = [table[v] for v in cfg.variants]
    if "gt" not in cfg.variants:
        out.insert(0, table["gt"])  # every other figure is read against it
    out += [checkpoint_variant(d, k) for k, d in enumerate(cfg.model_dirs, 1)]
    return out


def run_evaluation(cfg: EvalConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    import torch

    from ...inference.style_catalog import STYLE_CATALOG
    from ..metrics import FGDExtractor

    say = log or (lambda _m: None)
    torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    names = [e.name for e in STYLE_CATALOG]
    results: dict[str, Any] = {
        "config": asdict(cfg), "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": _git_commit(), "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                                   "python": platform.python_version(), "torch": torch.__version__,
                                                   "load_average_at_start": list(os.getloadavg())},
        "styles": names, "variants": {}, "timings_s": {},
    }
    timings = results["timings_s"]

    t = time.perf_counter()
    clips = load_clips(cfg.corpus, "test", cfg.clips)
    import json

    manifest_text = (Path(cfg.corpus) / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    results["corpus"] = {"path": str(cfg.corpus), "settings": manifest["settings"], "splits": manifest["splits"],
                         "evaluated_clips": len(clips),
                         "evaluated_hours": round(sum(c.seconds for c in clips) / 3600, 4),
                         "pure": sum(not c.mixed for c in clips), "mixed": sum(c.mixed for c in clips),
                         "held_out_descriptions": sum(c.held_out for c in clips),
                         "manifest_sha256": hashlib.sha256(manifest_text.encode()).hexdigest()}
    say(f"{len(clips)} test clips ({results['corpus']['evaluated_hours']:.2f} h)")
    onsets = [audio_onsets(c) for c in clips]
    timings["load_test"] = time.perf_counter() - t

    extractor = FGDExtractor.load(cfg.fgd_checkpoint or None)
    results["fgd_extractor"] = describe_extractor(extractor)
    say("train split: style classifiers and the FGD reference pool")
    ref = scan_train(cfg.corpus, extractor, cfg.fgd_pool_hours, cfg.seed, say)
    timings["train_pass"] = ref.seconds
    results["style_classifier"] = ref.classifiers.describe()

    tg_model = _retrieval_model(cfg, results)

    slow_subset = pick_spread(clips, cfg.slow_clips)
    slow_ids = {c.index for c in slow_subset}
    results["slow_subset"] = {"clips": [c.index for c in slow_subset],
                              "seconds": round(sum(c.seconds for c in slow_subset), 2),
                              "rule": f"the first {cfg.slow_clips} clips of a round-robin over style ids "
                                      "(corpus order inside a style), sorted by clip index"}
    data: dict[str, VariantData] = {}
    gt_emb_all: np.ndarray | None = None
    for variant in _variants(cfg):
        t = time.perf_counter()
        subset = slow_subset if variant.subset == "slow" else clips
        say(f"variant {variant.name}: {len(subset)} clips")
        entry: dict[str, Any] = {"variant": variant.describe()}
        vd = _generate_all(variant, subset, [onsets[clips.index(c)] for c in subset], cfg.seed, say)
        if vd is None or not vd.metrics:
            entry["available"] = False
            entry["reason"] = (vd.errors[0] if vd and vd.errors else "no clip generated")
            results["variants"][variant.name] = entry
            say(f"variant {variant.name} unavailable: {entry['reason']}")
            continue
        data[variant.name] = vd
        gt = data["gt"]
        if variant.name == "gt":
            gt_emb_all = extractor.embed(gt.motions)
            ref_fgd = fgd_reference(ref, gt_emb_all, sum(c.seconds for c in clips), cfg.fgd_subsets, cfg.seed)
            results["fgd_reference"] = ref_fgd
        gt_emb = gt_emb_all if variant.subset != "slow" else extractor.embed(_restrict(gt, slow_ids).motions)
        entry["available"] = True
        entry["errors"] = vd.errors[:5]
        entry["failed_clips"] = len(vd.errors)
        entry["engine_meta"] = vd.engine_meta
        entry["summary"] = summarise(vd, ref.classifiers, gt_emb, extractor, names)
        if variant.name == "gt":
            entry["summary"]["fgd"] = 0.0  # against itself; the train-vs-test reference is fgd_reference
        if tg_model is not None:
            entry["retrieval"] = retrieval(tg_model, vd.motions, vd.clips, cfg.retrieval_batches)
        entry["wall_s"] = round(time.perf_counter() - t, 1)
        results["variants"][variant.name] = entry

    # The slow subset, every available variant on the same clips.
    if any(v.subset == "slow" for v in _variants(cfg)):
        results["slow_subset"]["variants"] = {}
        gt_slow = _restrict(data["gt"], slow_ids)
        gt_slow_emb = extractor.embed(gt_slow.motions)
        for name, vd in data.items():
            sub = _restrict(vd, slow_ids)
            if sub.metrics:
                s = summarise(sub, ref.classifiers, gt_slow_emb, extractor, names)
                results["slow_subset"]["variants"][name] = {k: s[k] for k in s
                                                            if k not in ("per_style", "confusion_pairs")}

    # Per-part prompts change only their parts.
    results["part_isolation"] = {}
    iso_clips = pick_spread(clips, cfg.isolation_clips, pure_only=True)
    for variant in _variants(cfg):
        styled = variant.prompt == "clip" and variant.options.get("strength", 1.0) != 0.0
        if variant.name in data and variant.engine is not None and variant.subset == "all" and styled:
            say(f"part isolation: {variant.name}, {len(iso_clips)} clips")
            t = time.perf_counter()
            results["part_isolation"][variant.name] = part_isolation(variant, iso_clips, ref.classifiers, cfg.seed)
            results["part_isolation"][variant.name]["wall_s"] = round(time.perf_counter() - t, 1)

    from .targets import evaluate_targets

    if cfg.speed:
        from .speed import run_speed

        t = time.perf_counter()
        diffusion_ok = bool(results["variants"].get("diffusion", {}).get("available"))
        results["speed"] = run_speed(cfg.corpus, lengths=cfg.speed_lengths, steps=cfg.speed_steps,
                                     ddpm_steps=cfg.ddpm_steps, repeats=cfg.speed_repeats,
                                     ddpm_repeats=cfg.ddpm_repeats, threads=cfg.threads, ddpm=cfg.speed_ddpm,
                                     diffusion=diffusion_ok, model_dir=cfg.model_dir, register=cfg.register,
                                     key_writing=cfg.key_writing, log=say)
        if not diffusion_ok:
            results["speed"]["diffusion_unavailable"] = results["variants"].get("diffusion", {}).get(
                "reason", "not evaluated")
        timings["speed"] = time.perf_counter() - t

    results["targets"] = {name: evaluate_targets(results, name) for name in ("diffusion", "rule")
                          if name in results["variants"]}
    results["pictures"] = _pictures(cfg, clips, data, say)
    timings["total"] = time.perf_counter() - t_start
    results["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return results


def _retrieval_model(cfg: EvalConfig, results: dict[str, Any]) -> Any:
    from ..checkpoint import load_model

    path = Path(cfg.retrieval_checkpoint or ROOT / "training" / "weights" / "text_gesture")
    try:
        model, ckpt = load_model(path)
    except Exception as e:  # noqa: BLE001 - the report says why retrieval is missing
        results["retrieval_model"] = {"available": False, "reason": f"{type(e).__name__}: {e}"}
        return None
    model.eval()
    rel = str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)
    results["retrieval_model"] = {"available": True, "checkpoint": rel, "step": ckpt.step,
                                  "window_frames": _window_frames(model), "batch": 32,
                                  "batches": cfg.retrieval_batches, "eval_seed": 1234}
    return model


def _window_frames(model: Any) -> int:
    return int(model.config.window_frames)


def _restrict(vd: VariantData, ids: set[int]) -> VariantData:
    keep = [k for k, c in enumerate(vd.clips) if c.index in ids]
    return VariantData([vd.clips[k] for k in keep], [vd.motions[k] for k in keep], [vd.metrics[k] for k in keep],
                       [vd.gen_seconds[k] for k in keep] if vd.gen_seconds else [], [])


def _generate_all(variant: Variant, clips: list[EvalClip], onsets: list[np.ndarray], seed: int,
                  say: Callable[[str], None]) -> VariantData | None:
    vd = VariantData([], [], [], [], [], {})
    for k, (clip, ons) in enumerate(zip(clips, onsets, strict=True)):
        try:
            rot, root, secs, meta = generate(variant, clip, seed)
            if not (np.isfinite(rot).all() and np.isfinite(root).all()):
                raise ValueError("the motion holds NaN or infinite values")
        except Exception as e:  # noqa: BLE001 - recorded; a failure on the first clip makes the variant unavailable
            vd.errors.append(f"clip {clip.index}: {type(e).__name__}: {e}")
            if k == 0:
                return vd
            continue
        if not vd.engine_meta:
            vd.engine_meta = meta
        vd.clips.append(clip)
        vd.motions.append((rot.astype(np.float32), root.astype(np.float32)))
        vd.metrics.append(clip_metrics(rot, root, ons))
        if variant.engine is not None:
            vd.gen_seconds.append(secs)
        if (k + 1) % 50 == 0:
            say(f"  {variant.name}: {k + 1}/{len(clips)}")
    return vd


def part_isolation(variant: Variant, clips: list[EvalClip], classifiers: StyleClassifiers,
                   seed: int) -> dict[str, Any]:
    """For each clip (pure, style A, its description as the prompt) and each mix group g: generate with the
    prompt "A; g: B" (B another style, a description from the same pool) with the same seed, and measure
    how much each body part's rotations changed (mean geodesic angle, degrees) and whether the group
    classifiers' verdicts moved: the prompted group should follow B, the others should keep their verdict."""
    from ...inference.style_catalog import STYLE_CATALOG
    from ..corpus.report import motion_features
    from .quality import DISPLAY_PARTS

    groups = list(PROMPTED_PARTS)
    change: dict[str, dict[str, list[float]]] = {g: {p: [] for p in DISPLAY_PARTS} for g in groups}
    follows: dict[str, list[bool]] = {g: [] for g in groups}
    kept: dict[str, dict[str, list[bool]]] = {g: {h: [] for h in PART_FEATURES if h != g} for g in groups}
    n_styles = len(STYLE_CATALOG)
    for clip in clips:
        base_prompt = clip_prompt(clip)
        rot0, root0, _, _ = generate(variant, clip, seed, prompt=base_prompt)
        f0 = motion_features(rot0, root0)
        rng = np.random.default_rng([clip.seed, 23])
        for g in groups:
            other = int(rng.integers(n_styles - 1))
            other += other >= clip.style_id
            prompt = part_prompt(base_prompt, g, style_description(other, clip.held_out, rng))
            rot1, root1, _, _ = generate(variant, clip, seed, prompt=prompt)
            for p, v in part_change_deg(rot0, rot1).items():
                change[g][p].append(v)
            f1 = motion_features(rot1, root1)
            follows[g].append(int(classifiers.predict_part(g, [f1])[0]) == other)
            for h in kept[g]:
                before, after = classifiers.predict_part(h, [f0])[0], classifiers.predict_part(h, [f1])[0]
                kept[g][h].append(int(before) == int(after))
    out: dict[str, Any] = {"clips": len(clips), "clip_ids": [c.index for c in clips], "by_group": {}}
    mean = {g: {p: float(np.mean(v)) for p, v in change[g].items()} for g in groups}
    # Each group's own part (arms, head, torso) changes this much when its own section changes.
    own = {g: mean[g][g] for g in groups}
    leaks: list[float] = []
    cross: list[float] = []
    for g in groups:
        ch = mean[g]
        prompted = float(np.mean([ch[p] for p in PROMPTED_PARTS[g]]))
        others = {p: ch[p] for p in ch if p not in PROMPTED_PARTS[g]}
        leak = max(others.values()) / prompted if prompted > 0 else math.inf
        leaks.append(leak)
        # Cross-talk: how much another group's part moves, relative to how much it moves under its own section.
        talk = {h: ch[h] / own[h] if own[h] > 0 else math.inf for h in groups if h != g}
        cross.extend(talk.values())
        out["by_group"][g] = {
            "prompt_key": {"arms": "arms", "head": "head", "torso": "body"}[g],
            "change_deg": ch, "prompted_change_deg": prompted, "max_other_change_deg": max(others.values()),
            "leak_ratio": leak, "crosstalk": talk, "prompted_classifier_follows": float(np.mean(follows[g])),
            "other_classifiers_keep_verdict": {h: float(np.mean(v)) for h, v in kept[g].items()},
        }
    out["max_leak_ratio"] = max(leaks)
    out["max_crosstalk"] = max(cross)
    return out


def _pictures(cfg: EvalConfig, clips: list[EvalClip], data: dict[str, VariantData],
              say: Callable[[str], None]) -> dict[str, Any]:
    from .sheets import contact_sheet, side_by_side_gif

    if cfg.sheets <= 0 and not cfg.gif:
        return {"sheets": []}
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = [n for n in ("gt", "rule", "diffusion") if n in data]
    labels = {"gt": "ground truth", "rule": "rule-based", "diffusion": "diffusion"}
    pure = [c for c in clips if not c.mixed]
    picked = pick_spread(pure, max(cfg.sheets - 1, 1))[: max(cfg.sheets - 1, 1)]
    mixed = [c for c in clips if c.mixed]
    if mixed and cfg.sheets > 1:
        picked.append(mixed[0])
    files = []
    for clip in picked[: cfg.sheets]:
        rows = []
        for n in shown:
            k = next((i for i, c in enumerate(data[n].clips) if c.index == clip.index), None)
            if k is not None:
                rows.append((labels[n], *data[n].motions[k]))
        if len(rows) < 1:
            continue
        title = f"clip {clip.index}: \"{clip_prompt(clip)}\"" + (" (held-out description)" if clip.held_out else "")
        path = contact_sheet(out_dir / f"sheet_clip{clip.index}.png", clip, rows, title)
        files.append({"file": path.name, "clip": clip.index, "prompt": clip_prompt(clip), "rows": [r[0] for r in rows]})
    result: dict[str, Any] = {"sheets": files}
    if cfg.gif and picked:
        clip = picked[0]
        rows = []
        for n in shown:
            k = next((i for i, c in enumerate(data[n].clips) if c.index == clip.index), None)
            if k is not None:
                rows.append((labels[n], *data[n].motions[k]))
        say("pictures: GIF")
        path = side_by_side_gif(out_dir / "side_by_side.gif", clip, rows)
        result["gif"] = {"file": path.name, "clip": clip.index, "rows": [r[0] for r in rows]}
    return result
