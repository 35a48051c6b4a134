"""A report a person can read about a corpus: do the styles differ, does motion land on the beat?

Writes report.md, report.json and PNG figures:
- per-style motion statistics (hand speed, extent, gesture rate, hold time, head and torso posture),
- a style classifier (standardised features, logistic regression) trained on the train split's pure
  clips and scored on the test split,
- per-part statistics of mixed clips: classifiers that see only one part's features must recognise that
  part's own style,
- BEAT's beat alignment (sigma 0.3 s) of the motion against librosa onsets of the audio, and jerk,
- a contact sheet of poses from a few test clips.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ...inference.audio import Audio, onset_times
from ...inference.gesture_metrics import beat_alignment, fast_fk
from ...inference.motion import CanonicalMotion
from ...inference.rotations import quat_rotate
from ...inference.skeleton import JOINT_INDEX, forward_kinematics
from .build import iter_clips

FPS = 30.0
_W = [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]]
_CHEST = JOINT_INDEX["spine3"]
_HEAD = JOINT_INDEX["head"]
_PELVIS = JOINT_INDEX["pelvis"]

ARM_FEATURES = ("wrist_speed", "wrist_speed_p90", "extent", "reach_max", "hand_height", "gesture_rate",
                "hold_fraction", "jerk", "right_share")
HEAD_FEATURES = ("head_speed", "head_pitch", "head_pitch_sd", "head_yaw_sd")
TORSO_FEATURES = ("torso_lean", "torso_sway", "shoulder_height")
ALL_FEATURES = ARM_FEATURES + HEAD_FEATURES + TORSO_FEATURES


def motion_features(rotations: np.ndarray, root: np.ndarray) -> dict[str, float]:
    """Style-revealing statistics of one clip of canonical motion."""
    glob, pos = fast_fk(rotations.astype(np.float64), root.astype(np.float64))
    wrists = pos[:, _W]  # (T, 2, 3)
    chest = pos[:, _CHEST]
    vel = np.diff(wrists, axis=0) * FPS
    speed = np.linalg.norm(vel, axis=-1)  # (T-1, 2)
    acc = np.diff(vel, axis=0) * FPS
    jerk = np.linalg.norm(np.diff(acc, axis=0) * FPS, axis=-1)
    rel = wrists - chest[:, None]
    reach = np.linalg.norm(rel, axis=-1)
    height = wrists[..., 1] - pos[:, None, _PELVIS, 1]
    s = speed.max(axis=1)
    # Strokes: peaks of the faster wrist's speed above 0.35 m/s, at least 0.2 s apart.
    peaks = [t for t in range(1, len(s) - 1) if s[t] > 0.35 and s[t] >= s[t - 1] and s[t] > s[t + 1]]
    strokes = [p for k, p in enumerate(peaks) if k == 0 or p - peaks[k - 1] >= 6]
    raised = height.max(axis=1)[1:] > 0.05
    hold = raised & (s < 0.12)
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.array([0.0, 0.0, 1.0])
    head_fwd = quat_rotate(glob[:, _HEAD], np.broadcast_to(fwd, (len(glob), 3)))
    head_pitch = np.arcsin(np.clip(head_fwd[:, 1], -1, 1))
    head_yaw = np.arctan2(head_fwd[:, 0], head_fwd[:, 2])
    head_speed = np.abs(np.diff(np.stack([head_pitch, head_yaw], 1), axis=0)).sum(1) * FPS
    spine_up = quat_rotate(glob[:, _CHEST], np.broadcast_to(up, (len(glob), 3)))
    lean = np.arcsin(np.clip(spine_up[:, 2], -1, 1))
    collar_h = pos[:, [JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]], 1].mean(1) - chest[:, 1]
    minutes = len(rotations) / FPS / 60.0
    return {
        "wrist_speed": float(speed.mean()),
        "wrist_speed_p90": float(np.percentile(s, 90)),
        "extent": float(reach.mean()),
        "reach_max": float(np.percentile(reach.max(1), 95)),
        "hand_height": float(height.max(1).mean()),
        "gesture_rate": len(strokes) / max(minutes, 1e-6),
        "hold_fraction": float(hold.mean()),
        "jerk": float(jerk.mean()),
        "right_share": float(speed[:, 1].sum() / max(speed.sum(), 1e-9)),
        "head_speed": float(head_speed.mean()),
        "head_pitch": float(head_pitch.mean()),
        "head_pitch_sd": float(head_pitch.std()),
        "head_yaw_sd": float(head_yaw.std()),
        "torso_lean": float(lean.mean()),
        "torso_sway": float(root[:, [0, 2]].std(0).sum()),
        "shoulder_height": float(collar_h.mean()),
    }


def _collect(corpus: Path, split: str, with_beats: bool = False) -> list[dict]:
    rows = []
    for clip in iter_clips(corpus, split):
        row = {
            "split": split, "style_id": int(clip["style_id"]), "mixed": bool(clip["mixed"]),
            "part_styles": clip["part_styles"], "seconds": float(clip["seconds"]), "index": int(clip["index"]),
            "features": motion_features(clip["rotations"], clip["root"]),
        }
        if with_beats:
            audio = Audio(clip["audio"].astype(np.float32) / 32768.0, 16000)
            motion = CanonicalMotion(clip["rotations"], clip["root"], FPS)
            row["beat_alignment"] = beat_alignment(onset_times(audio), motion, sigma=0.3)
        rows.append(row)
    return rows


def _matrix(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[r["features"][n] for n in names] for r in rows])


def _classifier(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=3.0)).fit(x, y)


def write_report(corpus: Path, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpus, out = Path(corpus), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((corpus / "manifest.json").read_text())
    names = [s["name"] for s in manifest["styles"]]
    train = _collect(corpus, "train")
    test = _collect(corpus, "test", with_beats=True)
    pure_train = [r for r in train if not r["mixed"]]
    pure_test = [r for r in test if not r["mixed"]]
    mixed_test = [r for r in test if r["mixed"]]

    # Style classifier on all features, pure clips.
    clf = _classifier(_matrix(pure_train, ALL_FEATURES), np.array([r["style_id"] for r in pure_train]))
    y_test = np.array([r["style_id"] for r in pure_test])
    pred = clf.predict(_matrix(pure_test, ALL_FEATURES))
    accuracy = float((pred == y_test).mean()) if len(y_test) else float("nan")

    # Per-part: a classifier per part group sees only that group's features.
    part_groups = {"arms": ("left_arm", ARM_FEATURES), "head": ("head", HEAD_FEATURES),
                   "torso": ("torso", TORSO_FEATURES)}
    per_part = {}
    for group, (part, feats) in part_groups.items():
        model = _classifier(_matrix(pure_train, feats), np.array([r["style_id"] for r in pure_train]))
        pure_acc = float((model.predict(_matrix(pure_test, feats)) == y_test).mean()) if pure_test else float("nan")
        changed = [r for r in mixed_test if r["part_styles"][part] != r["part_styles"]["left_arm"] or group == "arms"]
        if changed:
            want = np.array([r["part_styles"][part] for r in changed])
            got = model.predict(_matrix(changed, feats))
            mixed_acc = float((got == want).mean())
            # How often it names the clip's *other* style instead: low means the part kept its own style.
            others = np.array([
                r["part_styles"]["head"] if group == "arms" else r["part_styles"]["left_arm"] for r in changed
            ])
            other_rate = float(((got == others) & (others != want)).mean())
        else:
            mixed_acc = other_rate = float("nan")
        per_part[group] = {"features": list(feats), "pure_test_accuracy": round(pure_acc, 4),
                           "mixed_test_accuracy": round(mixed_acc, 4), "mixed_clips": len(changed),
                           "names_other_style_rate": round(other_rate, 4)}

    # Per-style statistics (pure clips of all loaded splits).
    by_style: dict[int, list[dict]] = defaultdict(list)
    for r in pure_train + pure_test:
        by_style[r["style_id"]].append(r["features"])
    style_stats = {
        names[s]: {k: round(float(np.mean([f[k] for f in fs])), 4) for k in ALL_FEATURES} | {"clips": len(fs)}
        for s, fs in sorted(by_style.items())
    }
    beats = [r["beat_alignment"] for r in test]
    jerks = [r["features"]["jerk"] for r in test]
    summary = {
        "corpus": str(corpus),
        "settings": manifest["settings"],
        "hours": {s: v["hours"] for s, v in manifest["splits"].items()},
        "styles": len(names),
        "style_classifier": {"features": list(ALL_FEATURES), "model": "standardised logistic regression",
                             "train_clips": len(pure_train), "test_clips": len(pure_test),
                             "test_accuracy": round(accuracy, 4), "chance": round(1.0 / len(names), 4)},
        "per_part_mixes": per_part,
        "beat_alignment": {"sigma_s": 0.3, "test_mean": round(float(np.mean(beats)), 4),
                           "test_median": round(float(np.median(beats)), 4), "clips": len(beats)},
        "jerk_m_per_s3": {"test_mean": round(float(np.mean(jerks)), 2)},
        "per_style": style_stats,
    }
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    _figures(plt, out, names, pure_train + pure_test, y_test, pred)
    _contact_sheet(plt, corpus, out, names)
    _markdown(out, summary)
    return {k: summary[k] for k in ("hours", "style_classifier", "per_part_mixes", "beat_alignment", "jerk_m_per_s3")}


def _figures(plt: Any, out: Path, names: list[str], rows: list[dict], y_test: np.ndarray, pred: np.ndarray) -> None:
    styles = sorted({r["style_id"] for r in rows})
    fig, axes = plt.subplots(1, 4, figsize=(20, 6))
    for ax, feat, label in zip(axes, ("wrist_speed", "extent", "gesture_rate", "hold_fraction"),
                               ("mean wrist speed (m/s)", "mean hand reach from chest (m)", "strokes per minute",
                                "hold fraction"), strict=True):
        data = [[r["features"][feat] for r in rows if r["style_id"] == s] for s in styles]
        ax.boxplot(data, vert=False, showfliers=False)
        ax.set_yticks(range(1, len(styles) + 1), [names[s] for s in styles], fontsize=7)
        ax.set_xlabel(label)
    fig.tight_layout()
    fig.savefig(out / "style_statistics.png", dpi=80)
    plt.close(fig)
    if len(y_test):
        from sklearn.metrics import confusion_matrix

        labels = list(range(len(names)))
        cm = confusion_matrix(y_test, pred, labels=labels, normalize="true")
        fig, ax = plt.subplots(figsize=(9, 8))
        ax.imshow(cm, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(labels, names, rotation=90, fontsize=7)
        ax.set_yticks(labels, names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("style classifier, test split (row-normalised)")
        fig.tight_layout()
        fig.savefig(out / "style_confusion.png", dpi=80)
        plt.close(fig)


def _contact_sheet(plt: Any, corpus: Path, out: Path, names: list[str], clips: int = 4, poses: int = 6) -> None:
    from ...inference.skeleton import PARENTS

    picked: list[dict] = []
    for clip in iter_clips(corpus, "test"):
        if not clip["mixed"] and all(c["style_id"] != clip["style_id"] for c in picked):
            picked.append(clip)
        if len(picked) == clips:
            break
    fig, axes = plt.subplots(len(picked), poses, figsize=(2 * poses, 2.6 * len(picked)), squeeze=False)
    for row, clip in zip(axes, picked, strict=True):
        _, pos = forward_kinematics(clip["rotations"].astype(np.float64), clip["root"].astype(np.float64))
        for ax, t in zip(row, np.linspace(0, len(pos) - 1, poses).astype(int), strict=True):
            for j, p in enumerate(PARENTS):
                if p >= 0:
                    ax.plot(pos[t, [p, j], 0], pos[t, [p, j], 1], color="tab:blue", lw=1.5)
            ax.set_xlim(-0.8, 0.8)
            ax.set_ylim(0.0, 1.9)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            words = [w for w, s, e in clip["words"] if s <= t / FPS <= e + 0.2]
            ax.set_title(f"{t / FPS:.1f}s {' '.join(words)[:18]}", fontsize=7)
        row[0].set_ylabel(names[clip["style_id"]], fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "contact_sheet.png", dpi=80)
    plt.close(fig)


def _markdown(out: Path, s: dict) -> None:
    c = s["style_classifier"]
    lines = [
        "# Procedural corpus report",
        "",
        f"Corpus `{s['corpus']}`: " + ", ".join(f"{k} {v:.2f} h" for k, v in s["hours"].items()) + ".",
        "Rebuild it and this report with:",
        "",
        "```",
        f".venv/bin/python tools/corpus.py build --hours {s['settings']['hours']:g} --out CORPUS "
        f"--seed {s['settings']['seed']}",
        ".venv/bin/python tools/corpus.py report --corpus CORPUS --out docs/corpus",
        "```",
        "",
        "## Styles separate",
        "",
        f"A {c['model']} on {len(c['features'])} motion features, trained on {c['train_clips']} pure train "
        f"clips, names the style of {c['test_clips']} pure test clips with **{c['test_accuracy']:.1%}** accuracy "
        f"({s['styles']} styles, chance {c['chance']:.1%}).",
        "",
        "![per-style statistics](style_statistics.png)",
        "",
        "![confusion](style_confusion.png)",
        "",
        "## Per-part mixes carry each part's own style",
        "",
        "Classifiers that see one part's features only, applied to mixed test clips (where that part's style "
        "differs from the rest):",
        "",
        "| part | features | accuracy on pure test clips | accuracy on its own style in mixed clips | "
        "names the other style | mixed clips |",
        "|---|---|---|---|---|---|",
    ]
    for group, p in s["per_part_mixes"].items():
        lines.append(f"| {group} | {', '.join(p['features'])} | {p['pure_test_accuracy']:.1%} | "
                     f"{p['mixed_test_accuracy']:.1%} | {p['names_other_style_rate']:.1%} | {p['mixed_clips']} |")
    b = s["beat_alignment"]
    lines += [
        "",
        "## Beat alignment and smoothness",
        "",
        f"BEAT's beat alignment (librosa onsets vs. local minima of wrist speed, sigma {b['sigma_s']} s) on "
        f"{b['clips']} test clips: mean **{b['test_mean']:.3f}**, median {b['test_median']:.3f}. "
        f"Mean wrist jerk {s['jerk_m_per_s3']['test_mean']:.1f} m/s^3.",
        "",
        "## Per-style statistics",
        "",
        "| style | clips | wrist speed m/s | reach m | strokes/min | hold fraction | head speed rad/s | lean rad |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, st in s["per_style"].items():
        lines.append(f"| {name} | {st['clips']} | {st['wrist_speed']:.3f} | {st['extent']:.3f} | "
                     f"{st['gesture_rate']:.1f} | {st['hold_fraction']:.2f} | {st['head_speed']:.3f} | "
                     f"{st['torso_lean']:.3f} |")
    lines += ["", "## Contact sheet", "", "![poses](contact_sheet.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
