"""Writes an evaluation's results as report.json (every figure), report.md (docs/-style Markdown) and PNG
plots into one folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

PLOTS = ("summary.png", "style_accuracy_by_style.png", "style_statistics_vs_gt.png")


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, numpy scalars plain numbers, floats rounded."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return None if not math.isfinite(x) else round(x, 6)
    return x


def _f(x: Any, digits: int = 3, suffix: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}{suffix}"


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.1f} %"


def _available(results: dict[str, Any]) -> list[str]:
    return [n for n, v in results["variants"].items() if v.get("available")]


def write_report(results: dict[str, Any], out: str | Path, title: str = "Gestura evaluation report") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean = _clean(results)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(clean, indent=1, sort_keys=False))
    for name, path in _plots(clean, out).items():
        paths[name] = path
    paths["markdown"].write_text(_markdown(clean, title, {k: p.name for k, p in paths.items()}))
    return paths


# ---------------------------------------------------------------------------------------------------------
# Plots


def _plots(r: dict[str, Any], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, Path] = {}
    names = _available(r)
    full = [n for n in names if r["variants"][n]["variant"]["subset"] == "all"]
    labels = {n: r["variants"][n]["variant"]["label"] for n in names}
    summ = {n: r["variants"][n]["summary"] for n in names}

    # 1. Summary bars.
    panels = [("fgd", "FGD vs test ground truth (lower is better)"),
              ("beat_alignment_0.3", "beat alignment, sigma 0.3 s"),
              ("jerk", "wrist jerk (m/s^3)"),
              ("foot_slide_cm_s", "foot sliding (cm/s in contact)"),
              ("style_in", "style accuracy: in-vocabulary / held-out"),
              ("R@1", "retrieval R@1 (batches of 32)")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    for ax, (key, ttl) in zip(axes.ravel(), panels, strict=True):
        xs = np.arange(len(full))
        if key == "style_in":
            a = [summ[n].get("style_accuracy", {}).get("in_vocabulary") or 0.0 for n in full]
            b = [summ[n].get("style_accuracy", {}).get("held_out") or 0.0 for n in full]
            ax.bar(xs - 0.2, a, 0.4, label="in-vocabulary")
            ax.bar(xs + 0.2, b, 0.4, label="held-out")
            ax.axhline(0.85, color="tab:blue", ls=":", lw=1)
            ax.axhline(0.70, color="tab:orange", ls=":", lw=1)
            ax.legend(fontsize=7)
            ax.set_ylim(0, 1.05)
        elif key == "R@1":
            vals = [(r["variants"][n].get("retrieval") or {}).get("R@1") or 0.0 for n in full]
            ax.bar(xs, vals, color="tab:purple")
            ax.set_ylim(0, 1.05)
        else:
            vals = [summ[n].get(key) if summ[n].get(key) is not None else 0.0 for n in full]
            ax.bar(xs, vals, color=["0.4" if n == "gt" else "tab:blue" for n in full])
            gt = summ.get("gt", {}).get(key)
            if key in ("beat_alignment_0.3", "jerk") and gt:
                ax.axhline(gt, color="k", ls="--", lw=1, label="ground truth")
                ax.axhline(gt * (0.9 if key.startswith("beat") else 1.2), color="tab:red", ls=":", lw=1,
                           label="target (issue 5)")
                ax.legend(fontsize=7)
            if key == "fgd" and r.get("fgd_reference", {}).get("subset_vs_test_mean") is not None:
                ref = r["fgd_reference"]["subset_vs_test_mean"]
                ax.axhline(ref, color="k", ls="--", lw=1, label="train vs test")
                ax.axhline(2 * ref, color="tab:red", ls=":", lw=1, label="2x train vs test (target)")
                ax.legend(fontsize=7)
        ax.set_xticks(xs, [labels[n] for n in full], rotation=25, ha="right", fontsize=7)
        ax.set_title(ttl, fontsize=9)
    fig.tight_layout()
    files["summary"] = out / "summary.png"
    fig.savefig(files["summary"], dpi=72)
    plt.close(fig)

    # 2. Style accuracy per style and variant (pure clips).
    styles = r["styles"]
    mat = np.full((len(styles), len(full)), np.nan)
    for j, n in enumerate(full):
        for i, s in enumerate(styles):
            v = summ[n].get("per_style", {}).get(s, {}).get("accuracy")
            if v is not None:
                mat[i, j] = v
    fig, ax = plt.subplots(figsize=(2 + 1.1 * len(full), 8))
    im = ax.imshow(mat, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(styles)), styles, fontsize=7)
    ax.set_xticks(range(len(full)), [labels[n] for n in full], rotation=25, ha="right", fontsize=7)
    for i in range(len(styles)):
        for j in range(len(full)):
            if np.isfinite(mat[i, j]):
                ax.text(j, i, f"{mat[i, j]:.0%}", ha="center", va="center", fontsize=6,
                        color="w" if mat[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title("style accuracy per style (pure test clips)", fontsize=9)
    fig.tight_layout()
    files["style_accuracy_by_style"] = out / "style_accuracy_by_style.png"
    fig.savefig(files["style_accuracy_by_style"], dpi=72)
    plt.close(fig)

    # 3. Per-style motion statistics against ground truth.
    feats = [("wrist_speed", "wrist speed (m/s)"), ("gesture_rate", "strokes per minute"),
             ("extent", "hand reach from chest (m)"), ("head_speed", "head speed (rad/s)")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    gt_ps = summ.get("gt", {}).get("per_style", {})
    for ax, (f, ttl) in zip(axes, feats, strict=True):
        lo, hi = math.inf, -math.inf
        for k, n in enumerate([n for n in full if n != "gt"]):
            ps = summ[n].get("per_style", {})
            pairs = [(gt_ps[s][f], ps[s][f]) for s in styles if s in gt_ps and s in ps
                     and gt_ps[s].get(f) is not None and ps[s].get(f) is not None]
            if pairs:
                x, y = np.array(pairs).T
                ax.scatter(x, y, s=14, label=labels[n], color=f"C{k}")
                lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        if math.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
        ax.set_xlabel(f"ground truth: {ttl}", fontsize=8)
        ax.set_ylabel("generated", fontsize=8)
        ax.set_title(f"per style: {ttl}", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    files["style_statistics_vs_gt"] = out / "style_statistics_vs_gt.png"
    fig.savefig(files["style_statistics_vs_gt"], dpi=72)
    plt.close(fig)

    # 4. Per-part prompt isolation.
    iso = r.get("part_isolation", {})
    if iso:
        fig, axes = plt.subplots(1, len(iso), figsize=(5.5 * len(iso), 3.4), squeeze=False)
        for ax, (n, res) in zip(axes[0], iso.items(), strict=True):
            groups = list(res["by_group"])
            parts = list(next(iter(res["by_group"].values()))["change_deg"])
            m = np.array([[res["by_group"][g]["change_deg"][p] for p in parts] for g in groups])
            ax.imshow(m, cmap="magma", aspect="auto")
            for i in range(len(groups)):
                for j in range(len(parts)):
                    ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=8,
                            color="w" if m[i, j] < m.max() * 0.6 else "k")
            ax.set_xticks(range(len(parts)), parts, fontsize=8)
            ax.set_yticks(range(len(groups)), [f"'{res['by_group'][g]['prompt_key']}:' changed" for g in groups],
                          fontsize=8)
            ax.set_title(f"{labels.get(n, n)}: mean rotation change (deg)", fontsize=9)
        fig.tight_layout()
        files["part_isolation"] = out / "part_isolation.png"
        fig.savefig(files["part_isolation"], dpi=72)
        plt.close(fig)

    # 5. Confusion of the generated motion's style (diffusion, else rule).
    for n in ("diffusion", "rule"):
        if n in names and summ[n].get("confusion_pairs"):
            cm = np.zeros((len(styles), len(styles)))
            for a, b in summ[n]["confusion_pairs"]:
                cm[a, b] += 1
            cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            fig, ax = plt.subplots(figsize=(9, 8))
            ax.imshow(cm, cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(styles)), styles, rotation=90, fontsize=7)
            ax.set_yticks(range(len(styles)), styles, fontsize=7)
            ax.set_xlabel("predicted by the classifier")
            ax.set_ylabel("the clip's style (prompt)")
            ax.set_title(f"{labels[n]}: style confusion, pure test clips (row-normalised)", fontsize=9)
            fig.tight_layout()
            files[f"confusion_{n}"] = out / f"confusion_{n}.png"
            fig.savefig(files[f"confusion_{n}"], dpi=72)
            plt.close(fig)
            break

    # 6. Speed.
    sp = r.get("speed")
    if sp and sp.get("runs"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        runs = [x for x in sp["runs"] if x.get("available")]
        for label, dev, style in (("rule", "cpu", "o-"), ("diffusion", "cpu", "s-"), ("diffusion", "cuda", "^-")):
            pts = sorted((x["seconds"], x["rtf"]) for x in runs if x["label"] == label and x["device"] == dev)
            if pts:
                axes[0].plot(*np.array(pts).T, style, label=f"{label} ({dev})")
        axes[0].axhline(20, color="tab:red", ls=":", lw=1, label="20x (issue 5, 30 s)")
        axes[0].set_xlabel("audio length (s)")
        axes[0].set_ylabel("real-time factor (x)")
        axes[0].set_yscale("log")
        axes[0].legend(fontsize=7)
        axes[0].set_title("real-time factor vs audio length", fontsize=9)
        steps = []
        first_len = sp["runs"][0]["seconds"]
        for x in runs:
            opts, meta = x.get("options", {}), x.get("engine_meta", {})
            n_steps = meta.get("steps") or opts.get("steps")
            if x["label"].startswith("diffusion") and x["device"] == "cpu" and x["seconds"] == first_len and n_steps:
                steps.append((n_steps, x["rtf"], meta.get("sampler") or opts.get("sampler", "dpm")))
        for sampler, mk in (("dpm", "o"), ("ddim", "s"), ("ddpm", "^")):
            pts = sorted((s, v) for s, v, smp in steps if smp == sampler)
            if pts:
                axes[1].plot(*np.array(pts).T, f"{mk}-", label=sampler)
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("sampler steps")
        axes[1].set_ylabel("real-time factor (x)")
        axes[1].set_title(f"real-time factor vs sampler steps ({sp['runs'][0]['seconds']:g} s of speech, CPU)",
                          fontsize=9)
        if steps:
            axes[1].legend(fontsize=7)
        fig.tight_layout()
        files["speed"] = out / "speed.png"
        fig.savefig(files["speed"], dpi=72)
        plt.close(fig)
    return files


# ---------------------------------------------------------------------------------------------------------
# Markdown


def _markdown(r: dict[str, Any], title: str, files: dict[str, str]) -> str:
    cfg = r["config"]
    names = _available(r)
    v = r["variants"]
    lines = [f"# {title}", ""]
    corpus = r["corpus"]
    lines += [
        f"Corpus `{corpus['path']}` (seed {corpus['settings']['seed']}, {corpus['settings']['hours']:g} h; test split "
        f"{corpus['splits']['test']['clips']} clips, {corpus['splits']['test']['hours']:.2f} h). Evaluated: "
        f"{corpus['evaluated_clips']} test clips ({corpus['evaluated_hours']:.2f} h; {corpus['pure']} pure, "
        f"{corpus['mixed']} with per-part styles; {corpus['held_out_descriptions']} with a held-out description); "
        f"manifest sha256 `{str(corpus.get('manifest_sha256', ''))[:16]}...`.",
        f"Code `{r['code_version']}`, {r['started']} to {r['finished']}, wall time "
        f"**{r['timings_s']['total'] / 60:.1f} min** on {r['machine']['cpu_count']} CPU cores "
        f"(load average at start {r['machine']['load_average_at_start'][0]:.1f}; torch {r['machine']['torch']}, "
        f"{cfg['threads']} thread(s)).",
        "",
        "```",
        cfg.get("command") or "(called from Python)",
        "```",
        "",
    ]
    unavailable = [n for n in v if not v[n].get("available")]
    if unavailable:
        lines += ["**Unavailable in this run** (the evaluation went on without them):", ""]
        for n in unavailable:
            lines.append(f"- `{n}` ({v[n]['variant']['label']}): {v[n].get('reason', '')}")
        lines.append("")

    lines += ["## Variants", ""]
    for n, e in v.items():
        d = e["variant"]
        meta = e.get("engine_meta") or {}
        said = ", ".join(f"{k} {meta[k]}" for k in ("sampler", "steps", "guidance", "model", "device") if k in meta)
        state = "" if e.get("available") else " **unavailable**"
        failed = f"; {e['failed_clips']} clips failed: {e['errors'][0]}" if e.get("failed_clips") else ""
        lines.append(f"- `{n}`{state}: {d['label']}: {d['note']}" + (f" (engine reports: {said})" if said else "")
                     + failed)
    lines.append("")

    # Summary table.
    ex = r["fgd_extractor"]
    ref = r.get("fgd_reference", {})
    lines += [
        "## Summary",
        "",
        "Every figure on the same test clips (the DDPM row: on the slow subset only, see below). FGD against the "
        "test split's ground truth, extractor "
        f"`{ex.get('checkpoint')}` (step {ex.get('step')}, code {ex.get('code_version')}, model.safetensors "
        f"sha256 `{str(ex.get('model_safetensors_sha256', 'n/a'))[:16]}...`; windows of {ex.get('window')} frames "
        f"every {ex.get('stride')}).",
        "",
        "| variant | clips | FGD | diversity | BA σ=0.3 | BA σ=0.1 | jerk m/s³ | foot slide cm/s | "
        "style acc. in-vocab | "
        "held-out | per-part arms / head / torso | R@1 | R@5 | generation x real time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        s = v[n]["summary"]
        acc = s.get("style_accuracy", {})
        pp = s.get("per_part_accuracy", {})
        ret = v[n].get("retrieval") or {}
        sub = " (slow subset)" if v[n]["variant"]["subset"] == "slow" else ""
        lines.append(
            f"| {v[n]['variant']['label']}{sub} | {s['clips']} | {_f(s.get('fgd'), 2)} | {_f(s.get('diversity'), 1)} | "
            f"{_f(s.get('beat_alignment_0.3'))} | {_f(s.get('beat_alignment_0.1'))} | {_f(s.get('jerk'), 1)} | "
            f"{_f(s.get('foot_slide_cm_s'), 2)} | {_pct(acc.get('in_vocabulary'))} | {_pct(acc.get('held_out'))} | "
            f"{' / '.join(_pct(pp.get(g, {}).get('accuracy')) for g in ('arms', 'head', 'torso'))} | "
            f"{_pct(ret.get('R@1'))} | {_pct(ret.get('R@5'))} | "
            f"{_f(s.get('generation_rtf'), 1, 'x') if n != 'gt' else '-'} |")
    if ref.get("available"):
        lines += ["", f"Reference FGD between the corpus's own splits (same extractor): train subsets of the test "
                  f"split's duration ({ref['subset_hours']:.2f} h, {len(ref['subsets'])} random subsets of a "
                  f"{ref['pool_hours']:.2f} h pool of train clips) vs test: **{_f(ref['subset_vs_test_mean'], 2)} ± "
                  f"{_f(ref['subset_vs_test_sd'], 2)}**; the whole pool vs test: {_f(ref['pool_vs_test'], 2)}. FGD "
                  "values of a few units between real sets are sampling noise (docs/TRAINING.md): read differences "
                  "below ~2 as ties."]
    gt = v.get("gt", {}).get("summary", {})
    if gt:
        acc = gt.get("style_accuracy", {})
        sc = r["style_classifier"]
        lines += ["", f"The style classifier ({sc['model']}, {len(sc['features'])} "
                  f"motion statistics, trained on {sc['train_clips']} pure clips of the train split) "
                  f"names the style of the ground-truth test clips with {_pct(acc.get('all'))} accuracy "
                  f"({_pct(acc.get('in_vocabulary'))} / {_pct(acc.get('held_out'))} on the clips whose description is "
                  "in-vocabulary / held out: the same motion, so the split only matters for generated motion). "
                  "Chance is 4 %."]
    lines += ["", f"![summary]({files.get('summary', 'summary.png')})", ""]

    # Targets.
    for key, tg in r.get("targets", {}).items():
        if key not in v:
            continue
        lines += [f"## Issue 5 targets: {v[key]['variant']['label']}", ""]
        if tg.get("unavailable"):
            lines += [f"Not measured: {tg['unavailable']}", ""]
        lines += ["| target | value | threshold | result |", "|---|---|---|---|"]
        for c in tg["checks"]:
            val = c.get("value")
            if c["id"].startswith("style"):
                shown = _pct(val)
            elif c["id"] == "rtf_30s_cpu":
                shown = _f(val, 1, "x")
            elif c["id"] in ("beat_alignment", "jerk", "fgd"):
                against = c.get("reference_gt", c.get("reference_train_test"))
                shown = f"{_f(val, 2, 'x')} ({_f(c.get('raw'), 3)} vs {_f(against, 3)})"
            else:
                shown = _f(val, 3)
            lines.append(f"| {c['what']} | {shown} | {c['target']} | **{c['status']}** |")
        lines.append("")

    # Slow subset.
    ss = r.get("slow_subset", {})
    if ss.get("variants"):
        lines += [f"## The slow subset (DDPM, {cfg.get('ddpm_steps', 1000)} steps)", "",
                  f"{len(ss['clips'])} clips ({ss['seconds']:.0f} s of speech; {ss['rule']}): clip ids "
                  f"{', '.join(map(str, ss['clips']))}. Every available variant on these clips, FGD against their "
                  "ground "
                  "truth (few windows: FGD on a set this small is dominated by sampling noise).", "",
                  "| variant | FGD | BA σ=0.3 | BA σ=0.1 | jerk | foot slide | style acc. (pure) | "
                  "generation x real time |",
                  "|---|---|---|---|---|---|---|---|"]
        for n, s in ss["variants"].items():
            lines.append(f"| {v[n]['variant']['label']} | {_f(s.get('fgd'), 2)} | {_f(s.get('beat_alignment_0.3'))} | "
                         f"{_f(s.get('beat_alignment_0.1'))} | {_f(s.get('jerk'), 1)} | "
                         f"{_f(s.get('foot_slide_cm_s'), 2)} | "
                         f"{_pct(s.get('style_accuracy', {}).get('all'))} | "
                         f"{_f(s.get('generation_rtf'), 1, 'x') if n != 'gt' else '-'} |")
        lines.append("")

    # Style.
    lines += ["## Style control", "",
              "Each engine gets the clip's recorded description as its prompt; a mixed clip's prompt adds a section "
              "for each body-part group whose style differs from the arms' (\"<arms description>; head: <description>; "
              "body: <description>\", descriptions from the same pool, in-vocabulary or held out). Style accuracy is "
              "on the pure clips (one style for the whole body); per-part accuracy on the mixed clips: a classifier "
              "that sees only one group's statistics (arms: wrist speed, reach, ...; head: head speed and pitch; "
              "torso: lean, sway, shoulder height) names that group's own style where it differs from the rest (as "
              "in docs/corpus). The per-part classifiers are weak even on ground truth: compare with the ground-truth "
              "row.", ""]
    pp_rows = [n for n in names if v[n]["summary"].get("per_part_accuracy")]
    if pp_rows:
        lines += ["| variant | arms: in-vocab / held-out | head: in-vocab / held-out | torso: in-vocab / held-out | "
                  "mixed clips (arms / head / torso) |", "|---|---|---|---|---|"]
        for n in pp_rows:
            pp = v[n]["summary"]["per_part_accuracy"]
            cells = [f"{_pct(pp[g].get('in_vocabulary'))} / {_pct(pp[g].get('held_out'))}"
                     for g in ("arms", "head", "torso")]
            lines.append(f"| {v[n]['variant']['label']} | " + " | ".join(cells) + " | "
                         + " / ".join(str(pp[g]["clips"]) for g in ("arms", "head", "torso")) + " |")
        lines.append("")
    lines += [f"![style accuracy per style]({files.get('style_accuracy_by_style', '')})", "",
              f"![per-style statistics]({files.get('style_statistics_vs_gt', '')})", ""]
    for n in ("diffusion", "rule"):
        if f"confusion_{n}" in files:
            lines += [f"![confusion]({files[f'confusion_{n}']})", ""]
    full = [n for n in names if v[n]["variant"]["subset"] == "all"]
    if full:
        lines += ["Per style (pure test clips): style accuracy, then beat alignment (σ 0.3 s) and wrist speed (m/s).",
                  "", "| style | clips | " + " | ".join(v[n]["variant"]["label"] for n in full) + " |",
                  "|---|---|" + "---|" * len(full)]
        for s in r["styles"]:
            cells = []
            clips = None
            for n in full:
                ps = v[n]["summary"].get("per_style", {}).get(s)
                if ps is None:
                    cells.append("n/a")
                    continue
                clips = ps["clips"]
                cells.append(f"{_pct(ps['accuracy'])}, {_f(ps['beat_alignment_0.3'], 2)}, {_f(ps['wrist_speed'], 3)}")
            lines.append(f"| {s} | {clips if clips is not None else 0} | " + " | ".join(cells) + " |")
        lines.append("")

    iso = r.get("part_isolation", {})
    if iso:
        lines += [
            "### Per-part prompts change only their parts", "",
            "For each of a set of pure test clips (style A, prompt = its description) and each body-part group, the "
            "same clip and seed are generated again with the prompt \"<A's description>; <group>: <B's description>\" "
            "(B another style). The table gives the mean rotation change (geodesic angle in degrees, over frames and "
            "the part's joints) of every part: the named group's parts should change, the others should not. "
            "**Leak ratio**: the largest change of a part the section did not name / the mean change of the parts it "
            "named. **Cross-talk**: another group's part (arms, head, torso) changes by this fraction of what it "
            "changes when its own section changes (a scale-free measure: the head moves less than the arms in every "
            "style). \"Follows\": the named group's classifier now names B; \"others keep\": the other groups' "
            "classifiers give the same verdict as before.", ""]
        for n, res in iso.items():
            parts = list(next(iter(res["by_group"].values()))["change_deg"])
            lines += [f"**{v[n]['variant']['label']}** ({res['clips']} clips, {res.get('wall_s', 0):.0f} s; worst "
                      f"cross-talk {_f(res.get('max_crosstalk'), 2)}):", "",
                      "| section changed | " + " | ".join(parts)
                      + " | leak ratio | cross-talk | follows | others keep |",
                      "|---|" + "---|" * (len(parts) + 4)]
            for b in res["by_group"].values():
                keep = ", ".join(f"{h} {_pct(x)}" for h, x in b["other_classifiers_keep_verdict"].items())
                talk = ", ".join(f"{h} {_f(x, 2)}" for h, x in b.get("crosstalk", {}).items())
                lines.append(f"| `{b['prompt_key']}:` | " + " | ".join(_f(b["change_deg"][p], 2) for p in parts)
                             + f" | {_f(b['leak_ratio'], 2)} | {talk} | {_pct(b['prompted_classifier_follows'])} | "
                             f"{keep} |")
            lines.append("")
        if "rule" in iso:
            lines += ["The rule engine's neck and head take out the trunk's lean and twist (inference/rule_engine.py: "
                      "the head stays level when the trunk leans), so its `body:` section changes the head's local "
                      "rotations by design; the corpus's ground truth has the same coupling.", ""]
        if "part_isolation" in files:
            lines += [f"![part isolation]({files['part_isolation']})", ""]

    # Retrieval.
    rm = r.get("retrieval_model", {})
    lines += ["## Gesture-transcript retrieval", ""]
    if rm.get("available"):
        lines += [f"The embedding `{rm['checkpoint']}` (docs/EMBEDDING.md) on each variant's motion against the clips' "
                  f"transcripts: {rm['batches']} fixed batches of {rm['batch']} windows of "
                  f"{rm['window_frames']} frames "
                  "(one window per clip and batch), R@k = mean of transcript-to-gesture and gesture-to-transcript "
                  "(chance R@1 3.1 %). It measures whether the motion carries the transcript's gestures at the right "
                  "times.", "", "| variant | R@1 | R@5 | t→g R@1 | g→t R@1 | chrono_acc |", "|---|---|---|---|---|---|"]
        for n in names:
            ret = v[n].get("retrieval") or {}
            if ret.get("available"):
                lines.append(f"| {v[n]['variant']['label']} | {_pct(ret['R@1'])} | {_pct(ret['R@5'])} | "
                             f"{_pct(ret['t2g_R@1'])} | {_pct(ret['g2t_R@1'])} | {_f(ret['chrono_acc'], 3)} |")
            elif ret:
                lines.append(f"| {v[n]['variant']['label']} | n/a ({ret.get('reason', '')}) | | | | |")
    else:
        lines.append(f"Not measured: {rm.get('reason', '')}")
    lines.append("")

    # Speed.
    sp = r.get("speed")
    lines += ["## Speed and cost", ""]
    if sp:
        lines += [f"Each configuration in a fresh process, {sp['threads']} torch/BLAS thread(s), median of "
                  f"{sp['repeats']} runs after one warm-up call on 3 s (model loading and caches: \"first call\"), "
                  "speech from test clips one after another. Real-time factor = audio seconds / wall seconds of "
                  "`generate_motion` (audio features + engine). Memory (resident set, Linux VmHWM reset per phase): "
                  "the process's peak; \"+ engine\": the peak over the process before the first engine call "
                  "(imports and test clips loaded: what loading and running the engine adds); \"+ run\": the peak "
                  "of the timed calls over the process with the engine loaded and warm. Load average at the start: "
                  f"{sp['load_average_at_start'][0]:.1f} "
                  f"on {sp['cpu_count']} cores (other jobs share this machine).", "",
                  "| engine | device | audio s | sampler, steps (engine's report) | median s | x real time | "
                  "runs (s) | first call s | peak RSS MB | + engine MB | + run MB | GPU peak MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for x in sp["runs"]:
            if not x.get("available"):
                why = str(x.get("reason", "")).replace("\n", " ")[:160]
                lines.append(f"| {x['label']} | {x['device']} | {x['seconds']:g} | | n/a | n/a | {why} "
                             "| | | | | |")
                continue
            meta = x.get("engine_meta", {})
            smp = f"{meta.get('sampler')}, {meta.get('steps')}" if meta.get("steps") else "-"
            lines.append(f"| {x['label']} | {x['device']} | {x['audio_s']:g} | {smp} | {x['median_s']:.3f} | "
                         f"**{x['rtf']:.1f}x** | "
                         f"{', '.join(f'{t:.2f}' for t in x['times_s'])} | {x['first_call_s']:.2f} | "
                         f"{x['peak_rss_mb']:.0f} | {x['peak_rss_increase_mb']:.0f} | "
                         f"{_f(x.get('generation_peak_increase_mb'), 0)} | "
                         f"{_f(x.get('cuda_peak_allocated_mb'), 0)} |")
        lines.append("")
        cu = sp.get("cuda", {})
        lines.append(f"GPU: {cu.get('device') if cu.get('available') else 'not measured: ' + str(cu.get('reason'))}.")
        if sp.get("diffusion_unavailable"):
            lines.append(f"Diffusion engine not measured: {sp['diffusion_unavailable']}")
        if sp.get("ratios"):
            lines += ["", "Ratios measured in this run: " + "; ".join(f"{k} = {val}" for k, val in sp["ratios"].items())
                      + "."]
        reg = sp.get("register")
        if reg:
            if reg.get("available"):
                lines += ["", f"Add-on import + `register()` in a fresh interpreter with bpy loaded first (as "
                          "tests/integration/test_register.py): register "
                          f"**{1000 * reg['register_s_median']:.1f} ms**, "
                          f"import {1000 * reg['import_s_median']:.1f} ms (median of {reg['runs']}); torch imported by "
                          f"register: {reg['torch_imported_by_register']}."]
            else:
                lines += ["", f"Register time not measured: {reg.get('reason')}"]
        kw = sp.get("key_writing")
        if kw:
            if kw.get("available"):
                lines += ["", f"Key writing (`{kw['command']}`, default engine, Rigify rig of {kw['rig_bones']} bones, "
                          f"{kw['mapped_bones']} mapped, {kw['keys']} keys for {kw['speech_s']:g} s): F-curve path "
                          f"**{1000 * kw['write_keys_fcurve_s']:.1f} ms** vs a keyframe_insert loop "
                          f"{kw['write_keys_keyframe_insert_s']:.2f} s ({kw['keyframe_insert_over_fcurve']}x); "
                          f"operator call to keys {kw['operator_to_keys_s']:.2f} s ({kw['real_time_factor']}x real "
                          "time); stages "
                          f"{kw.get('stages_s')}."]
            else:
                lines += ["", f"Key writing not measured (`{kw.get('command', '')}` failed): "
                          f"`{str(kw.get('reason', '')).splitlines()[-1] if kw.get('reason') else ''}`"]
        if "speed" in files:
            lines += ["", f"![speed]({files['speed']})"]
    else:
        lines.append("Not measured in this run (`--no-speed`).")
    lines.append("")

    pics = r.get("pictures", {})
    if pics.get("sheets") or pics.get("gif"):
        lines += ["## Side by side", "",
                  "Stick figures of the canonical skeleton, front view, the same moments of the same clip (first row "
                  "titles: time and the word being spoken)."]
        if pics.get("gif"):
            lines += ["", f"![side by side]({pics['gif']['file']})"]
        for sh in pics.get("sheets", []):
            lines += ["", f"![clip {sh['clip']}]({sh['file']})"]
        lines.append("")

    lines += ["## How each figure is measured", "",
              "- **FGD**: Fréchet distance between Gaussians fitted to the extractor's embeddings of all 32-frame "
              "windows "
              "(stride 8) of the generated clips and of the same clips' ground truth (training/metrics.py).",
              "- **Diversity**: mean L1 distance between the embeddings of random pairs of windows.",
              "- **Beat alignment** (BEAT / EMAGE): librosa onsets of the audio; motion beats = local minima of either "
              "wrist's speed with a 0.1 m/s rise within 0.25 s; score = mean over onsets of exp(-d²/2σ²), d the "
              "distance "
              "to the nearest motion beat; σ = 0.3 s (BEAT) and the stricter σ = 0.1 s (inference/gesture_metrics.py).",
              "- **Jerk**: mean magnitude of the wrists' third derivative of position (m/s³).",
              "- **Foot sliding**: mean horizontal speed (cm/s) of a foot joint on consecutive frames where it is "
              "within "
              "2 cm of its rest height (on the ground); ground truth stands still, so values near 0 are right.",
              "- **Style accuracy**: see Style control; classifier trained on the train split, never on generated "
              "motion.",
              "- **Retrieval**: see Gesture-transcript retrieval.",
              f"- Engine seeds: a hash of the evaluation seed ({cfg['seed']}) and the clip index, never the clip's own "
              "corpus seed (with it the rule engine would replay the ground truth exactly).",
              "- Stage wall times (s): " + ", ".join(f"{k} {val:.0f}" for k, val in r["timings_s"].items()) + "; per "
              "variant: " + ", ".join(f"{n} {v[n].get('wall_s', 0):.0f}" for n in names) + ".", ""]
    return "\n".join(lines)
