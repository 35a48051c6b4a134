"""The feature cache: audio features and frame-aligned words per Sample, cached on disk by a content key."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.transcript import Word
from gestura.training.data.features import (
    PAD,
    SIL,
    UNK,
    FeatureCache,
    FeatureSettings,
    Vocabulary,
    build_vocabulary,
    normalise_word,
)
from gestura.training.data.format import Sample

SR = 16000


def speech_sample(source: str = "clip_a", seconds: float = 2.0, words: list[Word] | None = None) -> Sample:
    n = int(round(seconds * 30))
    t = np.arange(int(seconds * SR)) / SR
    audio = 0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)  # voiced bursts
    rot = np.zeros((n, 52, 4), np.float32)
    rot[..., 0] = 1
    if words is None:
        words = [Word("Hello", 0.10, 0.45), Word("hands", 0.50, 0.90), Word("running,", 1.00, 1.02)]
    return Sample(rot, np.zeros((n, 3)), audio.astype(np.float32), words, source)


def test_vocabulary_lemmatises_and_round_trips(tmp_path: Path) -> None:
    assert normalise_word("Running,") == "run" and normalise_word("Hands") == "hand"
    assert normalise_word("Hands", lemmatize=False) == "hands"
    vocab = build_vocabulary([speech_sample(), speech_sample(words=[Word("hand", 0, 1), Word("ran", 1, 2)])])
    assert vocab.tokens[:3] == [PAD, UNK, SIL] and vocab.tokens[3] == "hand"  # the most frequent first
    assert set(vocab.tokens[3:]) == {"hand", "hello", "run"}
    assert vocab.encode("RUNS") == vocab.index["run"] and vocab.encode("zebra") == vocab.index[UNK]
    vocab.save(tmp_path / "vocab.json")
    again = Vocabulary.load(tmp_path / "vocab.json")
    assert again.tokens == vocab.tokens and again.digest == vocab.digest


def test_features_align_words_to_frames(tmp_path: Path) -> None:
    sample = speech_sample()
    vocab = build_vocabulary([sample])
    f = FeatureCache(vocab, root=tmp_path).get(sample)
    assert f.num_frames == sample.num_frames == 60
    assert f.log_mel.shape == (60, 64) and f.log_mel.dtype == np.float32
    assert f.onset.shape == f.energy.shape == f.pitch_hz.shape == f.voiced.shape == (60,)
    hello, hand, run, sil = (vocab.index[w] for w in ("hello", "hand", "run", SIL))
    # Frame t is time t/30: "Hello" [0.10, 0.45) -> frames 3..13, "hands" [0.5, 0.9) -> 15..26,
    # "running" (20 ms) still gets its one frame 30.
    assert f.words.tolist() == [[hello, 3, 14], [hand, 15, 27], [run, 30, 31]]
    assert (f.word_ids[3:14] == hello).all() and (f.word_ids[15:27] == hand).all() and f.word_ids[30] == run
    assert f.word_ids[0] == sil and f.word_ids[14] == sil and (f.word_ids[31:] == sil).all()
    assert f.pitch_hz[f.voiced].size and np.median(f.pitch_hz[f.pitch_hz > 0]) == pytest.approx(150, rel=0.05)


def test_second_call_hits_the_cache_and_settings_invalidate(tmp_path: Path) -> None:
    sample = speech_sample(seconds=3.0)
    vocab = build_vocabulary([sample])
    cache = FeatureCache(vocab, root=tmp_path)
    t0 = time.perf_counter()
    first = cache.get(sample)
    t1 = time.perf_counter()
    second = FeatureCache(vocab, root=tmp_path).get(sample)  # a fresh cache object: read from disk
    t2 = time.perf_counter()
    assert cache.misses == 1 and (t2 - t1) < max(0.05, 0.5 * (t1 - t0))
    for name in ("log_mel", "onset", "energy", "pitch_hz", "voiced", "word_ids", "words"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert len(list(tmp_path.glob("*/features.npz"))) == 1

    other = FeatureCache(vocab, FeatureSettings(fps=15.0), root=tmp_path)
    half = other.get(sample)
    assert other.misses == 1 and other.hits == 0 and half.num_frames == 45
    assert len(list(tmp_path.glob("*/features.npz"))) == 2

    # New content (another transcript) or another vocabulary: a new key too.
    changed = speech_sample(seconds=3.0, words=[Word("gesture", 0.2, 0.8)])
    assert cache.key(changed) != cache.key(sample)
    assert FeatureCache(build_vocabulary([changed]), root=tmp_path).key(sample) != cache.key(sample)
    cache.get(sample)
    assert cache.hits == 1 and cache.misses == 1
