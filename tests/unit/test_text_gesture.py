"""Gesture-transcript embedding: tokens at their frames, chronological negatives, the contrastive loss,
retrieval recall, a few training steps on a synthetic set, and the checkpoint round trip."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gestura.training.checkpoint import load_model, save_checkpoint
from gestura.training.models.text_gesture import (
    GESTURE_DIM,
    SIL_ID,
    UNK_ID,
    SegmentData,
    TextGestureModel,
    TextGestureModelConfig,
    TextGestureTask,
    TextGestureTaskConfig,
    Vocabulary,
    chrono_shuffle,
    contrastive_loss,
    eval_batches,
    evaluate_retrieval,
    frame_tokens,
    permute_segments,
    retrieval_recall,
    sample_train_starts,
    segment_cuts,
)

W = 40  # small windows keep the tests fast



def _small_config(vocab: Vocabulary, window: int = W) -> TextGestureModelConfig:
    return TextGestureModelConfig(vocab=list(vocab.tokens), window_frames=window, d_model=32, layers=1, heads=2,
                                  ff=64, dropout=0.0, embed_dim=16)


def test_vocabulary_uses_lemmas_and_specials():
    vocab = Vocabulary.build([["Ideas", "pointing", "the", "the"], ["idea", "points", "zzzq"]], min_count=2)
    assert vocab.tokens[:3] == ["<pad>", "<unk>", "<sil>"]
    assert {"idea", "point", "the"} <= set(vocab.tokens)
    assert vocab.id("IDEAS") == vocab.id("idea") == vocab.index["idea"]
    assert vocab.id("zzzq") == UNK_ID  # seen once: below min_count
    assert vocab.id("...") == SIL_ID  # no letters: not a word


def test_frame_tokens_place_words_at_their_time():
    vocab = Vocabulary.build([["big", "idea"]] * 2, min_count=1)
    toks, ons = frame_tokens([("big", 0.5, 0.8), ("idea", 1.0, 1.5)], 60, vocab)
    big, idea = vocab.index["big"], vocab.index["idea"]
    assert (toks[15:24] == big).all() and (toks[30:45] == idea).all()
    assert (toks[:15] == SIL_ID).all() and (toks[24:30] == SIL_ID).all() and (toks[45:] == SIL_ID).all()
    assert np.flatnonzero(ons).tolist() == [15, 30]


def _word_window(rng: np.random.Generator, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of a window of words of 4-12 frames with short pauses."""
    toks = np.full(w, SIL_ID, dtype=np.int32)
    ons = np.zeros(w, dtype=np.int8)
    f = 0
    while f < w:
        n = int(rng.integers(4, 13))
        toks[f:f + n] = rng.integers(3, 50)
        ons[f] = 1
        f += n + int(rng.integers(0, 4))
    return toks, ons


def test_chronological_negatives_permute_sub_segments_and_keep_content():
    rng = np.random.default_rng(0)
    pairs = [_word_window(rng) for _ in range(16)]
    toks = np.stack([p[0] for p in pairs])
    ons = np.stack([p[1] for p in pairs])
    tok_s, ons_s, cuts, valid = chrono_shuffle(toks, ons, rng, n_segments=4, snap=12)
    assert tok_s.shape == toks.shape and cuts.shape == (16, 3)
    assert valid.all()
    for i in range(16):
        c = cuts[i]
        assert np.all(np.diff(c) > 0) and 0 < c[0] and c[-1] < 120
        # cuts sit on word boundaries (a word onset or a token change) near equal spacing
        for k, cut in enumerate(c, start=1):
            assert ons[i, cut] == 1 or toks[i, cut] != toks[i, cut - 1]
            assert abs(cut - 30 * k) <= 12
        # the same content: the shuffled window is the original's segments in another order
        segs = np.split(toks[i], c)
        found = [p for p in itertools.permutations(range(4))
                 if np.array_equal(np.concatenate([segs[j] for j in p]), tok_s[i])]
        assert found and (0, 1, 2, 3) not in found
        assert any(np.array_equal(permute_segments(ons[i], c, np.array(p)), ons_s[i]) for p in found)
        assert np.array_equal(np.sort(tok_s[i]), np.sort(toks[i]))
        assert not np.array_equal(tok_s[i], toks[i])


def test_chronological_negative_of_silence_is_marked_invalid():
    toks = np.full((2, 120), SIL_ID, dtype=np.int32)
    ons = np.zeros((2, 120), dtype=np.int8)
    toks[1, 10:20] = 5
    ons[1, 10] = 1
    _, _, _, valid = chrono_shuffle(toks, ons, np.random.default_rng(1))
    assert valid.tolist() == [False, True]


def test_segment_cuts_fall_back_to_equal_spacing_without_boundaries():
    toks = np.full(120, 7, dtype=np.int32)
    assert segment_cuts(toks, np.zeros(120, dtype=np.int8), 4, 12).tolist() == [30, 60, 90]


def test_retrieval_recall_identity_random_and_ties():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, 16))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    perfect = retrieval_recall(z, z)
    assert perfect["R@1"] == perfect["R@5"] == perfect["t2g_R@1"] == perfect["g2t_R@1"] == 1.0
    r1 = [retrieval_recall(rng.normal(size=(32, 16)), rng.normal(size=(32, 16)))["R@1"] for _ in range(400)]
    assert abs(np.mean(r1) - 1 / 32) < 0.006
    r5 = [retrieval_recall(rng.normal(size=(32, 16)), rng.normal(size=(32, 16)))["R@5"] for _ in range(400)]
    assert abs(np.mean(r5) - 5 / 32) < 0.015
    const = retrieval_recall(np.ones((32, 4)), np.ones((32, 4)))
    assert const["R@1"] == 0.0  # ties count against the query


def test_contrastive_loss_chrono_term_and_mask():
    torch.manual_seed(0)
    zt = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    zg = torch.nn.functional.normalize(zt + 0.1 * torch.randn(8, 16), dim=-1)
    scale = torch.tensor(10.0)
    plain, logs = contrastive_loss(zt, zg, scale)
    assert "chrono" not in logs and torch.isfinite(plain)
    same, _ = contrastive_loss(zt, zg, scale, zt_neg=zt.flip(0), chrono_weight=0.0)
    assert torch.allclose(plain, same)
    # shuffled transcripts identical to the originals are as close to the gestures as the positives
    hard, logs = contrastive_loss(zt, zg, scale, zt_neg=zt.clone(), chrono_weight=1.0)
    assert logs["chrono"] > logs["clip"]
    # ... unless they are marked as not differing from their original: then they are no negatives
    masked, logs_m = contrastive_loss(zt, zg, scale, zt_neg=zt.clone(), neg_valid=torch.zeros(8, dtype=torch.bool),
                                      chrono_weight=1.0)
    g2t = float(torch.nn.functional.cross_entropy(scale * zg @ zt.T, torch.arange(8)))
    assert logs_m["chrono"] == pytest.approx(g2t, abs=1e-5)
    assert float(masked) < float(hard)


def test_model_shapes_and_normalised_embeddings():
    vocab = Vocabulary(["<pad>", "<unk>", "<sil>", "a", "b"])
    model = TextGestureModel(_small_config(vocab))
    tok = torch.randint(0, 5, (3, W))
    ons = torch.randint(0, 2, (3, W))
    g = torch.randn(3, W, GESTURE_DIM)
    out = model(tokens=tok, onsets=ons, gesture=g, tokens_neg=tok.flip(1), onsets_neg=ons.flip(1))
    assert out["transcript"].shape == out["gesture"].shape == out["transcript_neg"].shape == (3, 16)
    assert torch.allclose(out["transcript"].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out["gesture"].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(out["scale"].detach()) == pytest.approx(1 / 0.07, rel=1e-4)


def _synthetic_data(rng: np.random.Generator, n_clips: int, frames: int, vocab_size: int) -> SegmentData:
    """Clips whose 'gesture' carries each word's identity (a per-word pose) from its onset: learnable."""
    poses = np.random.default_rng(99).normal(size=(vocab_size, GESTURE_DIM)).astype(np.float32)
    feats, toks, ons = [], [], []
    for _ in range(n_clips):
        t = np.full(frames, SIL_ID, dtype=np.int32)
        o = np.zeros(frames, dtype=np.int8)
        f = int(rng.integers(0, 8))
        while f < frames:
            n = int(rng.integers(5, 12))
            t[f:f + n] = rng.integers(3, vocab_size)
            o[f] = 1
            f += n + int(rng.integers(0, 10))
        x = poses[t] + 0.1 * rng.normal(size=(frames, GESTURE_DIM)).astype(np.float32)
        feats.append(x.astype(np.float16))
        toks.append(t)
        ons.append(o)
    offsets = np.concatenate([[0], np.cumsum([frames] * n_clips)]).astype(np.int64)
    return SegmentData(np.concatenate(feats), np.concatenate(toks), np.concatenate(ons),
                       np.concatenate(ons), offsets, list(range(n_clips)))


def _synthetic_task(chrono_weight: float) -> TextGestureTask:
    rng = np.random.default_rng(3)
    vocab = Vocabulary(["<pad>", "<unk>", "<sil>"] + [f"w{i}" for i in range(17)])
    cfg = TextGestureTaskConfig(window_frames=W, d_model=32, layers=1, heads=2, ff=64, dropout=0.0, embed_dim=16,
                                chrono_weight=chrono_weight, batch_size=16, eval_batches=10, eval_batch_size=8)
    return TextGestureTask(cfg, vocab, _synthetic_data(rng, 24, 160, len(vocab)),
                                     _synthetic_data(rng, 10, 80, len(vocab)))


@pytest.mark.parametrize("chrono_weight", [0.0, 1.0])
def test_loss_decreases_in_a_few_steps(chrono_weight):
    torch.manual_seed(0)
    task = _synthetic_task(chrono_weight)
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = task.train_batches(np.random.default_rng(0))
    fixed = next(batches)
    assert ("tokens_neg" in fixed) == (chrono_weight > 0)
    first, _ = task.loss(model, fixed)
    for _ in range(40):
        loss, _ = task.loss(model, next(batches))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = task.loss(model, fixed)
    assert float(after.detach()) < 0.8 * float(first.detach())
    model.eval()
    with torch.no_grad():
        metrics = task.evaluate(model)
    assert metrics["R@1"] > 0.3  # chance 1/8


def test_eval_batches_take_distinct_clips_or_non_overlapping_windows():
    lengths = [200] * 40
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    data = SegmentData(np.zeros((n, 1), np.float16), np.zeros(n, np.int32), np.zeros(n, np.int8),
                       np.zeros(n, np.int8), offsets, list(range(40)))
    for starts in eval_batches(data, 20, 32, 120, seed=0):
        clips = np.searchsorted(offsets, starts, side="right") - 1
        assert len(set(clips.tolist())) == 32
        assert np.all(starts + 120 <= offsets[clips + 1])
    few = SegmentData(data.feats, data.tokens, data.onsets, data.lexical, offsets[:11], list(range(10)))
    for starts in eval_batches(few, 20, 8, 60, seed=0):
        s = np.sort(starts)
        assert np.all(np.diff(s) >= 60)  # no two windows overlap
    assert eval_batches(data, 3, 32, 120, seed=5)[2].tolist() == eval_batches(data, 3, 32, 120, seed=5)[2].tolist()
    starts = sample_train_starts(data, 500, 120, np.random.default_rng(0))
    clips = np.searchsorted(offsets, starts, side="right") - 1
    assert np.all(starts + 120 <= offsets[clips + 1])


def test_checkpoint_round_trip(tmp_path):
    task = _synthetic_task(1.0)
    model = task.build_model()
    with torch.no_grad():
        model.logit_scale.fill_(2.5)
    save_checkpoint(tmp_path / "ckpt", model, step=3, metrics={"R@1": 0.5})
    loaded, ckpt = load_model(tmp_path / "ckpt")
    assert isinstance(loaded, TextGestureModel) and ckpt.step == 3
    assert loaded.vocab.tokens == model.vocab.tokens
    model.eval()
    assert evaluate_retrieval(loaded, task.eval_data, 5, 8, 0) == evaluate_retrieval(model, task.eval_data, 5, 8, 0)
    win = task.eval_data.windows(np.array([0, 5]), W)
    with torch.no_grad():
        a = model(tokens=torch.from_numpy(win["tokens"]).long(), onsets=torch.from_numpy(win["onsets"]).long(),
                  gesture=torch.from_numpy(win["gesture"]))
        b = loaded(tokens=torch.from_numpy(win["tokens"]).long(), onsets=torch.from_numpy(win["onsets"]).long(),
                   gesture=torch.from_numpy(win["gesture"]))
    for k in ("transcript", "gesture", "scale"):
        assert torch.equal(a[k], b[k])


@pytest.mark.slow
def test_trainer_smoke_on_a_tiny_corpus(tmp_path, capsys):
    """The real path: corpus shards -> vocabulary and windows -> training/trainer.py -> checkpoint -> the
    module's evaluation command."""
    import json

    from gestura.training.corpus.build import CorpusSettings, build_corpus
    from gestura.training.models.text_gesture import main, make_task
    from gestura.training.trainer import TrainConfig, train

    corpus = tmp_path / "corpus"
    build_corpus(CorpusSettings(hours=0.01, seed=4, clips_per_shard=4, clip_seconds=(6.0, 8.0)), corpus, workers=1)
    task = make_task(corpus=str(corpus), window_frames=60, min_count=1, d_model=32, layers=1, heads=2, ff=64,
                     embed_dim=16, batch_size=8, eval_split="train", eval_batches=3, eval_batch_size=4)
    assert len(task.vocab) > 20 and task.train_data.n_clips >= 4
    assert (task.train_data.tokens > SIL_ID).mean() > 0.3  # words cover much of the frames
    config = TrainConfig(out_dir=str(tmp_path / "run"), steps=4, warmup=1, log_every=2, eval_every=4, ckpt_every=4,
                         device="cpu", threads=1, progress=False, plot=False, select_metric="R@1", select_mode="max")
    result = train(task, config)
    assert result.step == 4 and {"R@1", "R@5", "chrono_acc"} <= set(result.last_metrics)
    loaded, _ = load_model(result.latest)
    assert isinstance(loaded, TextGestureModel)
    assert evaluate_retrieval(loaded, task.eval_data, 3, 4, 1234)["R@1"] == result.last_metrics["R@1"]
    capsys.readouterr()
    assert main(["--checkpoint", str(result.latest), "--corpus", str(corpus), "--split", "train", "--batches", "3",
                 "--batch-size", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["R@1"] == result.last_metrics["R@1"]
