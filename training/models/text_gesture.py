"""Gesture-transcript joint embedding (GestureDiffuCLIP's semantic embedding) trained with a CLIP-style
symmetric InfoNCE loss plus chronological negatives (Contextual Gesture: the transcript's sub-segments
shuffled in time, so the embedding must respect *when* words are said, not only which).

Segments are windows of ``window_frames`` frames (default 120 = 4 s at 30 fps) cut from corpus clips.

* Transcript side: per-frame token ids (the lemma of the word spoken at that frame, ``<sil>`` between
  words) plus a word-onset flag, so every token sits at its time in the window. A temporal conv
  (downsampling 4x) and a small transformer encode it; mean+max pooling and a linear layer give the
  embedding.
* Gesture side: 6D rotations of the upper body (spine, neck, head, collars, arms) and the first segment of
  every finger, with their frame-to-frame velocities, normalised with train-split statistics; same
  conv + transformer + pooling architecture.
* Both embeddings are L2-normalised (``embed_dim``, default 128); the logit scale (inverse temperature) is
  learned (CLIP init 1/0.07, clamped at 100).
* Chronological negatives: each window is cut into ``chrono_segments`` sub-segments at word boundaries
  near equal spacing and the sub-segments are permuted (never the identity). The shuffled transcript has
  the same content (same frames, same words) in another order. They are extra negatives for the
  gesture->transcript direction (and, with ``chrono_side`` "gesture"/"both", shuffled gesture windows are
  extra negatives for transcript->gesture); ``chrono_weight`` weighs that term against plain InfoNCE.

Evaluation: recall@1/5 of transcript->gesture and gesture->transcript retrieval inside batches of 32
random test windows (one window per clip and batch, uniformly random start), averaged over many batches.

Training goes through the shared trainer (training/trainer.py; this module's ``make_task``); evaluating a
checkpoint through this module, which also runs as a script (see docs/EMBEDDING.md)::

    .venv/bin/python tools/train.py --config training/configs/text_gesture.json --corpus /tmp/corpus20 \
        --out /tmp/runs/tg_chrono
    .venv/bin/python training/models/text_gesture.py --checkpoint /tmp/runs/tg_chrono/checkpoints/best \
        --corpus /tmp/corpus20

Run as a script, the file first loads this checkout as the package ``gestura`` and re-runs itself from there
(the model's modules are imported from inference/nets/text_gesture.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: load this checkout as `gestura`, rerun there
    import importlib.util

    _root = Path(__file__).resolve().parents[2]
    _spec = importlib.util.spec_from_file_location("gestura", _root / "__init__.py",
                                                   submodule_search_locations=[str(_root)])
    assert _spec and _spec.loader
    _pkg = importlib.util.module_from_spec(_spec)
    sys.modules["gestura"] = _pkg
    _spec.loader.exec_module(_pkg)
    from gestura.training.models.text_gesture import main as _main

    raise SystemExit(_main())

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...inference.nets.text_gesture import (  # noqa: F401  (re-exported: checkpoints name these classes here)
    FPS,
    GESTURE_DIM,
    GESTURE_JOINTS,
    PAD_ID,
    SIL_ID,
    SPECIALS,
    UNK_ID,
    GestureEncoder,
    TextGestureModel,
    TextGestureModelConfig,
    TranscriptEncoder,
    Vocabulary,
    frame_tokens,
    normalise_word,
    word_lemma,
)


@dataclass
class TextGestureTaskConfig:
    """The task's settings (``task_args`` of training/configs/text_gesture.json)."""

    corpus: str = ""
    # data
    window_frames: int = 120
    min_count: int = 2  # vocabulary: lemmas seen at least this often in the train split
    max_vocab: int = 4000
    max_train_clips: int | None = None
    max_eval_clips: int | None = None
    # model
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ff: int = 256
    dropout: float = 0.1
    embed_dim: int = 128
    init_temperature: float = 0.07
    # loss
    chrono_weight: float = 1.0  # 0: plain CLIP InfoNCE
    chrono_side: str = "transcript"  # transcript | gesture | both
    chrono_segments: int = 4
    chrono_snap_frames: int = 12  # a cut moves to a word boundary at most this far from equal spacing
    batch_size: int = 128
    # evaluation
    eval_split: str = "test"
    eval_batches: int = 300
    eval_batch_size: int = 32
    eval_seed: int = 1234
    test_batches: int = 500  # test(): the test split, for tools/train.py --test

    def __post_init__(self) -> None:
        if self.chrono_side not in ("transcript", "gesture", "both"):
            raise ValueError(f"chrono_side must be transcript, gesture or both, not {self.chrono_side!r}")
        if self.chrono_segments < 2:
            raise ValueError("chrono_segments must be at least 2")

    def model_config(self, vocab: Vocabulary) -> TextGestureModelConfig:
        names = {f.name for f in fields(TextGestureModelConfig)} - {"vocab", "gesture_joints"}
        return TextGestureModelConfig(vocab=list(vocab.tokens), **{k: getattr(self, k) for k in names})


def lexical_onsets(words: Sequence[tuple[str, float, float]], n_frames: int, fps: float = FPS) -> np.ndarray:
    """Frames where a word of the rule engine's gesture lexicon starts (for evaluation breakdowns only)."""
    from ...inference.rule_engine import gesture_for_word

    out = np.zeros(n_frames, dtype=np.int8)
    for text, start, _end in words:
        a = int(round(float(start) * fps))
        if 0 <= a < n_frames and gesture_for_word(text) is not None:
            out[a] = 1
    return out


# ----------------------------------------------------------------------------------------------------
# Gesture features and the data set


def gesture_features(rotations: np.ndarray) -> np.ndarray:
    """(T, 52, 4) local quaternions -> (T, GESTURE_DIM) 6D rotations of GESTURE_JOINTS (float32)."""
    from ...inference.rotations import quat_to_6d
    from ...inference.skeleton import JOINT_INDEX

    idx = [JOINT_INDEX[n] for n in GESTURE_JOINTS]
    q = np.asarray(rotations, dtype=np.float64)[:, idx]
    return quat_to_6d(q).reshape(q.shape[0], -1).astype(np.float32)


@dataclass
class SegmentData:
    """Clips of one split, concatenated frame-wise, from which windows are cut."""

    feats: np.ndarray  # (N, GESTURE_DIM) float16
    tokens: np.ndarray  # (N,) int32
    onsets: np.ndarray  # (N,) int8
    lexical: np.ndarray  # (N,) int8, onsets of lexicon words (evaluation breakdowns)
    offsets: np.ndarray  # (C + 1,) int64
    clip_ids: list[int]

    @property
    def n_clips(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def windows(self, starts: np.ndarray, window: int) -> dict[str, np.ndarray]:
        """Windows at absolute frame indices ``starts`` (B,)."""
        idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(window)[None, :]
        return {
            "gesture": self.feats[idx].astype(np.float32),
            "tokens": self.tokens[idx],
            "onsets": self.onsets[idx],
            "lexical": self.lexical[idx],
        }


def load_segment_data(corpus: str | Path, split: str, vocab: Vocabulary, max_clips: int | None = None,
                      min_frames: int = 0) -> SegmentData:
    from ..corpus.build import iter_clips

    feats, toks, ons, lex, lengths, ids = [], [], [], [], [0], []
    for clip in iter_clips(Path(corpus), split):
        rot = clip["rotations"]
        n = rot.shape[0]
        if n < min_frames:
            continue
        words = [(str(w[0]), float(w[1]), float(w[2])) for w in clip["words"]]
        t, o = frame_tokens(words, n, vocab)
        feats.append(gesture_features(rot).astype(np.float16))
        toks.append(t)
        ons.append(o)
        lex.append(lexical_onsets(words, n))
        lengths.append(n)
        ids.append(int(clip["index"]))
        if max_clips is not None and len(ids) >= max_clips:
            break
    if not ids:
        raise ValueError(f"no clips of at least {min_frames} frames in split {split!r} of {corpus}")
    return SegmentData(np.concatenate(feats), np.concatenate(toks), np.concatenate(ons), np.concatenate(lex),
                       np.cumsum(lengths).astype(np.int64), ids)


def corpus_transcripts(corpus: str | Path, split: str) -> Iterator[list[str]]:
    """The words of every clip of a split, read from the shards' JSON sidecars alone (no tensors)."""
    corpus = Path(corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    for shard in manifest["shards"]:
        if shard["path"].startswith(split + "/"):
            for clip in json.loads((corpus / shard["path"]).with_suffix(".json").read_text()):
                yield [str(w[0]) for w in clip["words"]]


def sample_train_starts(data: SegmentData, batch: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Absolute start frames of ``batch`` windows, uniform over all valid window positions."""
    valid = np.maximum(data.lengths() - window + 1, 0)
    cum = np.cumsum(valid)
    g = rng.integers(0, int(cum[-1]), size=batch)
    clip = np.searchsorted(cum, g, side="right")
    local = g - np.concatenate([[0], cum])[clip]
    return data.offsets[clip] + local


def eval_batches(data: SegmentData, n_batches: int, batch: int, window: int, seed: int) -> list[np.ndarray]:
    """Fixed evaluation batches: each batch takes ``batch`` distinct clips (when the split has that many)
    and one window at a uniformly random start in each. With fewer clips, windows are drawn from a tiling
    of non-overlapping windows (random phase per clip) so no two windows of a batch overlap."""
    rng = np.random.default_rng(seed)
    lengths = data.lengths()
    ok = np.flatnonzero(lengths >= window)
    out = []
    if len(ok) >= batch:
        for _ in range(n_batches):
            clips = rng.choice(ok, size=batch, replace=False)
            starts = rng.integers(0, lengths[clips] - window + 1)
            out.append(data.offsets[clips] + starts)
        return out
    pool = []
    for c in ok:
        phase = int(rng.integers(0, (lengths[c] - window) % window + 1))
        pool.extend(data.offsets[c] + phase + window * np.arange((lengths[c] - phase) // window))
    if len(pool) < batch:
        raise ValueError(f"only {len(pool)} non-overlapping windows of {window} frames for batches of {batch}")
    pool_a = np.array(pool, dtype=np.int64)
    return [rng.choice(pool_a, size=batch, replace=False) for _ in range(n_batches)]


# ----------------------------------------------------------------------------------------------------
# Chronological negatives


def segment_cuts(tokens: np.ndarray, onsets: np.ndarray, n_segments: int, snap: int) -> np.ndarray:
    """Cut frames (n_segments - 1, increasing, in 1..W-1) near equal spacing, moved to the nearest word
    boundary (a word onset or a token change) within ``snap`` frames when there is one."""
    w = len(tokens)
    boundary = np.zeros(w, dtype=bool)
    boundary[1:] = (tokens[1:] != tokens[:-1]) | (onsets[1:] > 0)
    cand = np.flatnonzero(boundary)
    cuts: list[int] = []
    lo = 1
    for k in range(1, n_segments):
        target = round(k * w / n_segments)
        hi = w - (n_segments - k)  # leave room for the remaining cuts
        near = cand[(cand >= lo) & (cand <= hi) & (np.abs(cand - target) <= snap)]
        c = int(near[np.argmin(np.abs(near - target))]) if len(near) else min(max(target, lo), hi)
        cuts.append(c)
        lo = c + 1
    return np.array(cuts, dtype=np.int64)


def random_nonidentity_perm(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) other than the identity (n >= 2)."""
    while True:
        p = rng.permutation(n)
        if np.any(p != np.arange(n)):
            return p


def permute_segments(x: np.ndarray, cuts: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Reorder the sub-segments of ``x`` (along axis 0) split at ``cuts`` in the order ``perm``."""
    parts = np.split(x, cuts, axis=0)
    return np.concatenate([parts[i] for i in perm], axis=0)


def chrono_shuffle(tokens: np.ndarray, onsets: np.ndarray, rng: np.random.Generator, n_segments: int = 4,
                   snap: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chronological negatives of a batch of transcripts (B, W): the same frames with their sub-segments
    (cut at word boundaries) in another order. Returns shuffled tokens, onsets, per-window cut frames
    (B, n_segments - 1) and whether each shuffled window differs from its original (B,) (a window of
    silence, say, does not and makes no negative)."""
    b = tokens.shape[0]
    tok_s = np.empty_like(tokens)
    ons_s = np.empty_like(onsets)
    all_cuts = np.empty((b, n_segments - 1), dtype=np.int64)
    valid = np.zeros(b, dtype=bool)
    for i in range(b):
        cuts = segment_cuts(tokens[i], onsets[i], n_segments, snap)
        perm = random_nonidentity_perm(n_segments, rng)
        tok_s[i] = permute_segments(tokens[i], cuts, perm)
        ons_s[i] = permute_segments(onsets[i], cuts, perm)
        all_cuts[i] = cuts
        valid[i] = bool(np.any(tok_s[i] != tokens[i]) or np.any(ons_s[i] != onsets[i]))
    return tok_s, ons_s, all_cuts, valid


def chrono_shuffle_gesture(gesture: np.ndarray, cuts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gesture windows (B, W, D) with sub-segments (cut at ``cuts`` (B, K-1)) in another order."""
    out = np.empty_like(gesture)
    for i in range(gesture.shape[0]):
        perm = random_nonidentity_perm(cuts.shape[1] + 1, rng)
        out[i] = permute_segments(gesture[i], cuts[i], perm)
    return out


# ----------------------------------------------------------------------------------------------------
# Model (the modules live in inference/nets/text_gesture.py)


@torch.no_grad()
def set_gesture_normalisation(model: TextGestureModel, data: SegmentData, sample: int = 200_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = data.feats.shape[0]
    idx = np.sort(rng.choice(n - 1, size=min(sample, n - 1), replace=False))
    x = data.feats[idx].astype(np.float64)
    v = data.feats[idx + 1].astype(np.float64) - x
    model.gesture.mean.copy_(torch.from_numpy(x.mean(0)).float())
    model.gesture.std.copy_(torch.from_numpy(np.maximum(x.std(0), 1e-3)).float())
    model.gesture.vel_std.copy_(torch.from_numpy(np.maximum(v.std(0), 1e-4)).float())


# ----------------------------------------------------------------------------------------------------
# Loss and metrics


def contrastive_loss(zt: Tensor, zg: Tensor, scale: Tensor, zt_neg: Tensor | None = None,
                     zg_neg: Tensor | None = None, neg_valid: Tensor | None = None,
                     chrono_weight: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    """Symmetric InfoNCE over a batch of paired, L2-normalised embeddings (B, E), plus the chronological
    term: gesture->transcript InfoNCE whose candidates also include the shuffled transcripts ``zt_neg``
    (and transcript->gesture with shuffled gestures ``zg_neg``), weighted by ``chrono_weight``.
    ``neg_valid`` (B,) marks shuffled windows that really differ from their original."""
    b = zt.shape[0]
    labels = torch.arange(b, device=zt.device)
    logits = scale * zt @ zg.T  # transcript i vs gesture j
    l_t2g = F.cross_entropy(logits, labels)
    l_g2t = F.cross_entropy(logits.T, labels)
    loss = 0.5 * (l_t2g + l_g2t)
    logs = {"clip": float(loss.detach()), "scale": float(scale.detach())}
    if chrono_weight > 0 and (zt_neg is not None or zg_neg is not None):
        mask = None if neg_valid is None else ~neg_valid.bool()
        terms = []
        if zt_neg is not None:
            neg = scale * zg @ zt_neg.T
            if mask is not None:
                neg = neg.masked_fill(mask[None, :], float("-inf"))
            terms.append(F.cross_entropy(torch.cat([logits.T, neg], dim=1), labels))
        if zg_neg is not None:
            neg = scale * zt @ zg_neg.T
            if mask is not None:
                neg = neg.masked_fill(mask[None, :], float("-inf"))
            terms.append(F.cross_entropy(torch.cat([logits, neg], dim=1), labels))
        chrono = torch.stack(terms).mean()
        loss = loss + chrono_weight * chrono
        logs["chrono"] = float(chrono.detach())
    logs["loss"] = float(loss.detach())
    return loss, logs


def retrieval_ranks(sim: np.ndarray) -> np.ndarray:
    """0-based rank of the correct item (the diagonal) for each query row of a similarity matrix; ties
    count against the query (a constant matrix ranks every query last)."""
    sim = np.asarray(sim, dtype=np.float64)
    diag = np.diag(sim)[:, None]
    others = sim.copy()
    np.fill_diagonal(others, -np.inf)
    return (others >= diag).sum(axis=1)


def retrieval_recall(zt: np.ndarray, zg: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """R@k (fractions) of one batch of paired embeddings, transcript->gesture (t2g) and gesture->transcript
    (g2t), and their mean."""
    sim = np.asarray(zt, dtype=np.float64) @ np.asarray(zg, dtype=np.float64).T
    r_t2g = retrieval_ranks(sim)
    r_g2t = retrieval_ranks(sim.T)
    out: dict[str, float] = {}
    for k in ks:
        out[f"t2g_R@{k}"] = float(np.mean(r_t2g < k))
        out[f"g2t_R@{k}"] = float(np.mean(r_g2t < k))
        out[f"R@{k}"] = 0.5 * (out[f"t2g_R@{k}"] + out[f"g2t_R@{k}"])
    return out


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def embed_windows(model: TextGestureModel, win: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    dev = _device(model)
    zt = model.embed_transcript(torch.from_numpy(win["tokens"]).long().to(dev),
                                torch.from_numpy(win["onsets"]).long().to(dev))
    zg = model.embed_gesture(torch.from_numpy(win["gesture"]).to(dev))
    return zt.cpu().numpy(), zg.cpu().numpy()


@torch.no_grad()
def evaluate_retrieval(model: TextGestureModel, data: SegmentData, n_batches: int = 300, batch: int = 32,
                       seed: int = 1234, chrono_segments: int = 4, chrono_snap: int = 12) -> dict[str, float]:
    """Mean R@1/R@5 over ``n_batches`` fixed random batches of ``batch`` test windows (see eval_batches);
    R@1 by the number of lexicon words starting in the window (0, 1, 2, 3+) and the share of windows in
    each; and ``chrono_acc``: how often a gesture is closer to its own transcript than to that transcript
    with its sub-segments shuffled (0.5 for a model blind to timing)."""
    was_training = model.training
    model.eval()
    w = model.config.window_frames
    dev = _device(model)
    rng = np.random.default_rng([seed, 1])
    sums: dict[str, float] = {}
    by_lex: dict[int, list[float]] = {}
    chrono: list[float] = []
    for starts in eval_batches(data, n_batches, batch, w, seed):
        win = data.windows(starts, w)
        zt, zg = embed_windows(model, win)
        for k, v in retrieval_recall(zt, zg).items():
            sums[k] = sums.get(k, 0.0) + v
        sim = zt.astype(np.float64) @ zg.astype(np.float64).T
        hit = 0.5 * ((retrieval_ranks(sim) == 0).astype(float) + (retrieval_ranks(sim.T) == 0).astype(float))
        n_lex = np.minimum(win["lexical"].sum(axis=1), 3)
        for n, h in zip(n_lex.tolist(), hit.tolist(), strict=True):
            by_lex.setdefault(int(n), []).append(h)
        tok_s, ons_s, _, valid = chrono_shuffle(win["tokens"], win["onsets"], rng, chrono_segments, chrono_snap)
        zs = model.embed_transcript(torch.from_numpy(tok_s).long().to(dev),
                                    torch.from_numpy(ons_s).long().to(dev)).cpu().numpy()
        pos = np.sum(zt.astype(np.float64) * zg, axis=1)
        neg = np.sum(zs.astype(np.float64) * zg, axis=1)
        chrono.extend((pos[valid] > neg[valid]).astype(float).tolist())
    model.train(was_training)
    out = {k: v / n_batches for k, v in sorted(sums.items(), key=lambda kv: (kv[0] != "R@1", kv[0]))}
    out["chrono_acc"] = float(np.mean(chrono)) if chrono else float("nan")
    for n in sorted(by_lex):
        tag = f"lex{n}{'+' if n == 3 else ''}"
        out[f"R@1_{tag}"] = float(np.mean(by_lex[n]))
        out[f"share_{tag}"] = len(by_lex[n]) / (n_batches * batch)
    return out


# ----------------------------------------------------------------------------------------------------
# Task (training/trainer.py's protocol: build_model, train_batches, loss, evaluate)


class TextGestureTask:
    """Training task for the gesture-transcript embedding over a procedural corpus folder."""

    name = "text_gesture"

    def __init__(self, config: TextGestureTaskConfig, vocab: Vocabulary, train_data: SegmentData,
                 eval_data: SegmentData) -> None:
        self.config = config
        self.vocab = vocab
        self.train_data = train_data
        self.eval_data = eval_data
        self.test_data: SegmentData | None = None

    @classmethod
    def from_corpus(cls, config: TextGestureTaskConfig) -> TextGestureTask:
        """Vocabulary from the train split's transcripts; windows from the train and evaluation splits."""
        if not config.corpus:
            raise ValueError("text_gesture: task_args.corpus (or --corpus) is required")
        corpus = Path(config.corpus)
        vocab = Vocabulary.build(corpus_transcripts(corpus, "train"), config.min_count, config.max_vocab)
        w = config.window_frames
        return cls(config, vocab, load_segment_data(corpus, "train", vocab, config.max_train_clips, w),
                   load_segment_data(corpus, config.eval_split, vocab, config.max_eval_clips, w))

    def build_model(self) -> TextGestureModel:
        model = TextGestureModel(self.config.model_config(self.vocab))
        set_gesture_normalisation(model, self.train_data)
        return model

    def train_batches(self, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        cfg = self.config
        while True:
            starts = sample_train_starts(self.train_data, cfg.batch_size, cfg.window_frames, rng)
            win = self.train_data.windows(starts, cfg.window_frames)
            batch = {
                "tokens": torch.from_numpy(win["tokens"]).long(),
                "onsets": torch.from_numpy(win["onsets"]).long(),
                "gesture": torch.from_numpy(win["gesture"]),
            }
            if cfg.chrono_weight > 0:
                tok_s, ons_s, cuts, valid = chrono_shuffle(win["tokens"], win["onsets"], rng, cfg.chrono_segments,
                                                           cfg.chrono_snap_frames)
                batch["valid"] = torch.from_numpy(valid)
                if cfg.chrono_side in ("transcript", "both"):
                    batch["tokens_neg"] = torch.from_numpy(tok_s).long()
                    batch["onsets_neg"] = torch.from_numpy(ons_s).long()
                if cfg.chrono_side in ("gesture", "both"):
                    batch["gesture_neg"] = torch.from_numpy(chrono_shuffle_gesture(win["gesture"], cuts, rng))
            yield batch

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        out = model(**{k: v for k, v in batch.items() if k != "valid"})
        return contrastive_loss(out["transcript"], out["gesture"], out["scale"], out.get("transcript_neg"),
                                out.get("gesture_neg"), batch.get("valid"), self.config.chrono_weight)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Retrieval on the evaluation split (``eval_split``, "val" in the shipped config)."""
        assert isinstance(model, TextGestureModel)
        cfg = self.config
        return evaluate_retrieval(model, self.eval_data, cfg.eval_batches, cfg.eval_batch_size, cfg.eval_seed)

    def test(self, model: nn.Module) -> dict[str, float]:
        """Retrieval on the corpus's test split, ``test_batches`` batches (tools/train.py --test)."""
        assert isinstance(model, TextGestureModel)
        cfg = self.config
        if self.test_data is None:
            self.test_data = load_segment_data(Path(cfg.corpus), "test", self.vocab, None, cfg.window_frames)
        return evaluate_retrieval(model, self.test_data, cfg.test_batches, cfg.eval_batch_size, cfg.eval_seed)


def make_task(**task_args: Any) -> TextGestureTask:
    """The trainer's entry point (``"task": "text_gesture"`` in a config file)."""
    return TextGestureTask.from_corpus(TextGestureTaskConfig(**task_args))


# ----------------------------------------------------------------------------------------------------
# Command line: evaluate a checkpoint (training goes through tools/train.py)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="text_gesture", description="evaluate a gesture-transcript embedding")
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint folder (checkpoints/best)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from ..checkpoint import load_model

    torch.set_num_threads(max(1, args.threads))
    model, _ = load_model(args.checkpoint)
    assert isinstance(model, TextGestureModel)
    data = load_segment_data(args.corpus, args.split, model.vocab, None, model.config.window_frames)
    res = evaluate_retrieval(model, data, args.batches, args.batch_size, args.seed)
    print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split, "windows": args.batches *
                      args.batch_size, "test_clips": data.n_clips, **res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
