"""Quality figures of generated motion against the test split's ground truth.

Per clip: BEAT's beat alignment (sigma 0.3 s, and the stricter sigma 0.1 s), wrist jerk, foot sliding, and
the 16 style-revealing motion statistics of training/corpus/report.py (``motion_features``). Per set: FGD
against the ground truth's windows (extractor training/weights/fgd unless told otherwise), diversity, style
accuracy of a classifier trained on the corpus's train split (in-vocabulary and held-out descriptions, per
style), per-part style accuracy on the mixed clips, gesture-transcript retrieval R@1/R@5 in batches of 32.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...inference.motion import CanonicalMotion
from ..corpus.report import ALL_FEATURES, ARM_FEATURES, HEAD_FEATURES, TORSO_FEATURES, motion_features
from .data import FPS, EvalClip

PART_FEATURES: dict[str, tuple[str, ...]] = {"arms": ARM_FEATURES, "head": HEAD_FEATURES, "torso": TORSO_FEATURES}
FOOT_CONTACT_TOLERANCE_M = 0.02
BA_SIGMAS = (0.3, 0.1)


# ---------------------------------------------------------------------------------------------------------
# Per-clip metrics


def foot_sliding(pos: np.ndarray, fps: float = FPS, tolerance: float = FOOT_CONTACT_TOLERANCE_M) -> dict[str, float]:
    """Foot sliding of one clip from world joint positions (T, 52, 3).

    A foot joint (left_foot / right_foot: the ball of the foot) is in contact on a frame when its height is
    within ``tolerance`` of its rest-pose height (the T-pose stands on the ground, y = 0). Sliding is the
    mean horizontal speed (cm/s) of a foot over pairs of consecutive frames in which it is in contact at
    both; ``contact`` is the share of foot-frames in contact, ``airborne`` the share of frames with neither
    foot in contact (a floating or jumping body)."""
    from ...inference.skeleton import JOINT_INDEX, rest_positions

    idx = [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]]
    feet = np.asarray(pos)[:, idx]
    rest_h = rest_positions()[idx, 1]
    contact = feet[..., 1] - rest_h[None] < tolerance  # (T, 2)
    both = contact[1:] & contact[:-1]
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps * 100.0  # cm/s
    return {
        "slide_cm_s": float(speed[both].mean()) if both.any() else math.nan,
        "contact": float(contact.mean()),
        "airborne": float((~contact.any(axis=1)).mean()),
    }


def audio_onsets(clip: EvalClip) -> np.ndarray:
    from ...inference.audio import onset_times

    return onset_times(clip.audio_obj())


def clip_metrics(rotations: np.ndarray, root: np.ndarray, onsets: np.ndarray) -> dict[str, Any]:
    from ...inference.gesture_metrics import beat_alignment, jerk, motion_beats
    from ...inference.skeleton import forward_kinematics

    motion = CanonicalMotion(rotations, root, FPS)
    _, pos = forward_kinematics(motion.rotations, motion.root)
    beats = motion_beats(motion, pos=pos)
    out: dict[str, Any] = {"frames": motion.num_frames}
    for sigma in BA_SIGMAS:
        out[f"ba_{sigma:g}"] = beat_alignment(onsets, beats, sigma=sigma)
    out["jerk"] = jerk(motion, pos)
    out["foot"] = foot_sliding(pos)
    out["features"] = motion_features(np.asarray(rotations), np.asarray(root))
    return out


# ---------------------------------------------------------------------------------------------------------
# The style classifiers (as in training/corpus/report.py: standardised logistic regression on the motion
# statistics, trained on the train split's pure clips; one on all 16 features, one per mix group on that
# group's features only)


def _classifier(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=3.0)).fit(x, y)


def feature_matrix(rows: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    return np.array([[r[n] for n in names] for r in rows], dtype=np.float64).reshape(len(rows), len(names))


@dataclass
class StyleClassifiers:
    full: Any
    parts: dict[str, Any]
    train_clips: int
    styles: int

    @classmethod
    def fit(cls, features: Sequence[dict[str, float]], style_ids: Sequence[int]) -> StyleClassifiers:
        y = np.asarray(style_ids)
        full = _classifier(feature_matrix(features, ALL_FEATURES), y)
        parts = {g: _classifier(feature_matrix(features, names), y) for g, names in PART_FEATURES.items()}
        return cls(full, parts, len(y), len(set(y.tolist())))

    def predict(self, features: Sequence[dict[str, float]]) -> np.ndarray:
        if not features:
            return np.zeros(0, dtype=int)
        return np.asarray(self.full.predict(feature_matrix(features, ALL_FEATURES)))

    def predict_part(self, group: str, features: Sequence[dict[str, float]]) -> np.ndarray:
        if not features:
            return np.zeros(0, dtype=int)
        return np.asarray(self.parts[group].predict(feature_matrix(features, PART_FEATURES[group])))

    def describe(self) -> dict[str, Any]:
        return {"model": "standardised logistic regression (C=3), as training/corpus/report.py",
                "features": list(ALL_FEATURES), "part_features": {g: list(f) for g, f in PART_FEATURES.items()},
                "trained_on": "pure clips of the corpus train split", "train_clips": self.train_clips,
                "styles": self.styles}


# ---------------------------------------------------------------------------------------------------------
# The train-split pass: classifier features and the FGD reference pool


@dataclass
class TrainReference:
    classifiers: StyleClassifiers
    pool_embeddings: list[np.ndarray]  # per pooled train clip: (windows, D)
    pool_seconds: list[float]
    train_hours: float
    seconds: float  # wall time of the pass


def scan_train(corpus: str | Path, extractor: Any, pool_hours: float, seed: int = 0,
               progress: Callable[[str], None] | None = None) -> TrainReference:
    """One pass over the train split: motion features of every pure clip (for the classifiers) and FGD
    embeddings of a random pool of about ``pool_hours`` of clips (for the train-vs-test reference)."""
    import json
    import time

    from .data import iter_train_clips

    t0 = time.perf_counter()
    manifest = json.loads((Path(corpus) / "manifest.json").read_text())
    train_hours = float(manifest["splits"]["train"]["hours"])
    p = min(1.0, pool_hours / max(train_hours, 1e-9))
    rng = np.random.default_rng([seed, 11])
    feats: list[dict[str, float]] = []
    ids: list[int] = []
    pool: list[np.ndarray] = []
    pool_s: list[float] = []
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    pending_s: list[float] = []

    def flush() -> None:
        if pending:
            for (rot, root), secs in zip(pending, pending_s, strict=True):
                emb = extractor.embed([(rot, root)])
                if len(emb):
                    pool.append(emb)
                    pool_s.append(secs)
            pending.clear()
            pending_s.clear()

    for n, clip in enumerate(iter_train_clips(corpus)):
        if not clip["mixed"]:
            feats.append(motion_features(clip["rotations"], clip["root"]))
            ids.append(int(clip["style_id"]))
        if rng.random() < p:
            pending.append((np.asarray(clip["rotations"]), np.asarray(clip["root"])))
            pending_s.append(float(clip["seconds"]))
            if len(pending) >= 64:
                flush()
        if progress and n % 500 == 0:
            progress(f"train split: {n} clips")
    flush()
    return TrainReference(StyleClassifiers.fit(feats, ids), pool, pool_s, train_hours, time.perf_counter() - t0)


def fgd_reference(ref: TrainReference, test_embeddings: np.ndarray, test_seconds: float, subsets: int = 5,
                  seed: int = 0) -> dict[str, Any]:
    """FGD between the corpus's train and test splits: the whole pool vs test, and ``subsets`` random
    train subsets of the test split's duration vs test (mean, sd)."""
    from ..metrics import fgd_from_embeddings

    if not ref.pool_embeddings:
        return {"available": False, "reason": "no train clips in the pool"}
    out: dict[str, Any] = {"pool_hours": round(sum(ref.pool_seconds) / 3600.0, 3),
                           "pool_windows": int(sum(len(e) for e in ref.pool_embeddings)),
                           "pool_vs_test": fgd_from_embeddings(np.concatenate(ref.pool_embeddings), test_embeddings)}
    rng = np.random.default_rng([seed, 13])
    values = []
    for _ in range(subsets):
        order = rng.permutation(len(ref.pool_embeddings))
        take, secs = [], 0.0
        for k in order:
            if secs >= test_seconds:
                break
            take.append(ref.pool_embeddings[k])
            secs += ref.pool_seconds[k]
        values.append(fgd_from_embeddings(np.concatenate(take), test_embeddings))
    out["subset_hours"] = round(test_seconds / 3600.0, 3)
    out["subsets"] = [round(v, 4) for v in values]
    out["subset_vs_test_mean"] = float(np.mean(values))
    out["subset_vs_test_sd"] = float(np.std(values))
    out["available"] = True
    return out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_extractor(extractor: Any) -> dict[str, Any]:
    d = dict(extractor.describe())
    weights = Path(extractor.checkpoint) / "model.safetensors"
    if weights.is_file():
        d["model_safetensors_sha256"] = sha256_file(weights)
    try:
        d["checkpoint"] = str(Path(extractor.checkpoint).resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        pass
    return d


# ---------------------------------------------------------------------------------------------------------
# Retrieval


def retrieval(model: Any, motions: Sequence[tuple[np.ndarray, np.ndarray]], clips: Sequence[EvalClip],
              batches: int, seed: int = 1234) -> dict[str, Any]:
    """Gesture-transcript retrieval of the generated motion against its clips' transcripts
    (training/models/text_gesture.py evaluate_retrieval: windows of 4 s, one per clip and batch of 32)."""
    from ..models.text_gesture import SegmentData, evaluate_retrieval, frame_tokens, gesture_features, lexical_onsets

    feats, toks, ons, lex, lengths, ids = [], [], [], [], [0], []
    for (rot, _root), clip in zip(motions, clips, strict=True):
        n = int(rot.shape[0])
        t, o = frame_tokens(clip.words, n, model.vocab)
        feats.append(gesture_features(rot).astype(np.float16))
        toks.append(t)
        ons.append(o)
        lex.append(lexical_onsets(clip.words, n))
        lengths.append(n)
        ids.append(clip.index)
    data = SegmentData(np.concatenate(feats), np.concatenate(toks), np.concatenate(ons), np.concatenate(lex),
                       np.cumsum(lengths).astype(np.int64), ids)
    try:
        r = evaluate_retrieval(model, data, n_batches=batches, batch=32, seed=seed)
    except ValueError as e:
        return {"available": False, "reason": str(e)}
    return {"available": True, "batches": batches, "batch": 32, "R@1": r["R@1"], "R@5": r["R@5"],
            "t2g_R@1": r["t2g_R@1"], "g2t_R@1": r["g2t_R@1"], "chrono_acc": r["chrono_acc"]}


# ---------------------------------------------------------------------------------------------------------
# Set-level summary of one variant


@dataclass
class VariantData:
    """What a variant produced on its clips."""

    clips: list[EvalClip]
    motions: list[tuple[np.ndarray, np.ndarray]]
    metrics: list[dict[str, Any]]
    gen_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    engine_meta: dict[str, Any] = field(default_factory=dict)  # what the engine reported for the first clip


def _nanmean(values: Sequence[float]) -> float:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else math.nan


def _acc(pred: np.ndarray, want: np.ndarray) -> float:
    return float((pred == want).mean()) if len(want) else math.nan


def summarise(data: VariantData, classifiers: StyleClassifiers, gt_embeddings: np.ndarray | None,
              extractor: Any, style_names: Sequence[str]) -> dict[str, Any]:
    """Every set-level figure of one variant (FGD against ``gt_embeddings``: the ground truth of the same
    clips)."""
    from ..metrics import diversity, fgd_from_embeddings

    m = data.metrics
    out: dict[str, Any] = {"clips": len(m), "seconds": round(sum(c.seconds for c in data.clips), 2)}
    if not m:
        return out
    for sigma in BA_SIGMAS:
        out[f"beat_alignment_{sigma:g}"] = _nanmean([x[f"ba_{sigma:g}"] for x in m])
    out["jerk"] = _nanmean([x["jerk"] for x in m])
    out["foot_slide_cm_s"] = _nanmean([x["foot"]["slide_cm_s"] for x in m])
    out["foot_contact"] = _nanmean([x["foot"]["contact"] for x in m])
    out["airborne"] = _nanmean([x["foot"]["airborne"] for x in m])
    emb = extractor.embed(data.motions)
    out["diversity"] = diversity(emb)
    if gt_embeddings is not None and len(emb) >= 2:
        out["fgd"] = fgd_from_embeddings(gt_embeddings, emb)
    out["windows"] = len(emb)
    if data.gen_seconds:
        total = sum(data.gen_seconds)
        out["generation_s"] = round(total, 2)
        out["generation_rtf"] = round(out["seconds"] / total, 2) if total > 0 else math.inf

    # Style accuracy (whole-body classifier) on pure clips, by description pool.
    pure = [k for k, c in enumerate(data.clips) if not c.mixed]
    pred = classifiers.predict([m[k]["features"] for k in pure])
    want = np.array([data.clips[k].style_id for k in pure], dtype=int)
    held = np.array([data.clips[k].held_out for k in pure], dtype=bool)
    out["style_accuracy"] = {"all": _acc(pred, want), "in_vocabulary": _acc(pred[~held], want[~held]),
                             "held_out": _acc(pred[held], want[held]), "pure_clips": len(pure),
                             "in_vocabulary_clips": int((~held).sum()), "held_out_clips": int(held.sum())}
    out["confusion_pairs"] = [[int(a), int(b)] for a, b in zip(want.tolist(), pred.tolist(), strict=True)]

    # Per-part style accuracy on mixed clips: a part's classifier (its features only) must name the
    # part's own style where it differs from the rest (arms: every mixed clip), as the corpus report.
    mixed = [k for k, c in enumerate(data.clips) if c.mixed]
    per_part: dict[str, Any] = {}
    for group in PART_FEATURES:
        rows = [k for k in mixed
                if group == "arms" or data.clips[k].group_styles()[group] != data.clips[k].group_styles()["arms"]]
        p = classifiers.predict_part(group, [m[k]["features"] for k in rows])
        w = np.array([data.clips[k].group_styles()[group] for k in rows], dtype=int)
        h = np.array([data.clips[k].held_out for k in rows], dtype=bool)
        per_part[group] = {"accuracy": _acc(p, w), "clips": len(rows), "in_vocabulary": _acc(p[~h], w[~h]),
                           "held_out": _acc(p[h], w[h]), "held_out_clips": int(h.sum())}
    out["per_part_accuracy"] = per_part

    # Per style (pure clips): accuracy, beat alignment, jerk and the main motion statistics.
    per_style: dict[str, Any] = {}
    for sid, name in enumerate(style_names):
        ks = [k for k in pure if data.clips[k].style_id == sid]
        if not ks:
            continue
        sel = np.array([pure.index(k) for k in ks])
        per_style[name] = {
            "clips": len(ks), "accuracy": _acc(pred[sel], want[sel]),
            "beat_alignment_0.3": _nanmean([m[k]["ba_0.3"] for k in ks]),
            "jerk": _nanmean([m[k]["jerk"] for k in ks]),
            **{f: _nanmean([m[k]["features"][f] for k in ks])
               for f in ("wrist_speed", "extent", "gesture_rate", "hold_fraction", "head_speed", "torso_lean")},
        }
    out["per_style"] = per_style
    return out


# ---------------------------------------------------------------------------------------------------------
# Per-part prompts change only their parts


DISPLAY_PARTS: dict[str, tuple[str, ...]] = {
    "head": ("head",),
    "torso": ("torso",),
    "arms": ("left_arm", "right_arm"),
    "hands": ("left_hand", "right_hand"),
    "lower_body": ("lower_body",),
}
# Which display parts a prompt section for a mix group styles.
PROMPTED_PARTS = {"arms": ("arms", "hands"), "head": ("head",), "torso": ("torso", "lower_body")}


def part_change_deg(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean geodesic angle (degrees) between two motions' local joint rotations, per display part."""
    from ...inference.skeleton import BODY_PARTS, JOINT_INDEX

    n = min(len(a), len(b))
    dot = np.abs(np.sum(np.asarray(a[:n], np.float64) * np.asarray(b[:n], np.float64), axis=-1))
    ang = np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0)))  # (T, 52)
    out = {}
    for name, parts in DISPLAY_PARTS.items():
        idx = [JOINT_INDEX[j] for p in parts for j in BODY_PARTS[p]]
        out[name] = float(ang[:, idx].mean())
    return out
