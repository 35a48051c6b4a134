"""The procedural corpus: deterministic shards, clean splits, held-out descriptions, per-part mixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.gesture_metrics import fast_fk
from gestura.inference.style_catalog import STYLE_CATALOG
from gestura.training.corpus.build import (
    PART_ORDER,
    SPLITS,
    CorpusSettings,
    build_corpus,
    iter_clips,
    plan_corpus,
    sentence_split,
)


@pytest.fixture(scope="module")
def plans():
    return plan_corpus(CorpusSettings(hours=3.0, seed=11))


def test_plan_is_deterministic_and_sized(plans):
    again = plan_corpus(CorpusSettings(hours=3.0, seed=11))
    assert [(p.text, p.voice, p.part_styles, p.seed) for p in plans] == [
        (p.text, p.voice, p.part_styles, p.seed) for p in again
    ]
    other = plan_corpus(CorpusSettings(hours=3.0, seed=12))
    assert plans[0].text != other[0].text
    assert 600 < len(plans) < 2000


def test_splits_are_by_sentence_and_never_share_one(plans):
    per_split: dict[str, set[str]] = {s: set() for s in SPLITS}
    for p in plans:
        for sentence in p.sentences:
            per_split[p.split].add(sentence)
            assert sentence_split(sentence) == p.split
    assert not per_split["train"] & per_split["test"]
    assert not per_split["train"] & per_split["val"]
    share = {s: sum(p.split == s for p in plans) / len(plans) for s in SPLITS}
    assert share["train"] > 0.8 and share["val"] > 0.02 and share["test"] > 0.02


def test_held_out_descriptions_only_describe_test_clips(plans):
    held_out = {d for e in STYLE_CATALOG for d in e.held_out}
    for p in plans:
        assert (p.description in held_out) == p.description_held_out
        if p.split != "test":
            assert not p.description_held_out
        entry = STYLE_CATALOG[p.style_id]
        assert p.description in entry.descriptions
    assert any(p.description_held_out for p in plans)


def test_a_quarter_of_clips_mix_styles_per_body_part(plans):
    mixed = [p for p in plans if p.is_mixed]
    assert 0.15 < len(mixed) / len(plans) < 0.35
    for p in mixed:
        # A hand always moves in the style of its own arm.
        assert p.part_styles["left_hand"] == p.part_styles["left_arm"]
        assert p.part_styles["right_hand"] == p.part_styles["right_arm"]
    assert len({p.style_id for p in plans}) == len(STYLE_CATALOG)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    settings = CorpusSettings(hours=0.012, seed=5, clips_per_shard=2, mix_fraction=0.5)
    a = tmp_path_factory.mktemp("corpus_a")
    b = tmp_path_factory.mktemp("corpus_b")
    build_corpus(settings, a, workers=1)
    build_corpus(settings, b, workers=2)
    return a, b


def test_same_seed_gives_byte_identical_shards_whatever_the_worker_count(tiny):
    a, b = tiny
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) >= 3
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_clips_hold_matching_audio_motion_and_words(tiny):
    corpus, _ = tiny
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 5 and len(manifest["styles"]) == len(STYLE_CATALOG)
    clips = list(iter_clips(corpus))
    assert clips and sum(manifest["splits"][s]["clips"] for s in SPLITS) == len(clips)
    for clip in clips:
        seconds = clip["audio"].shape[0] / 16000
        assert clip["audio"].dtype == np.int16 and abs(seconds - clip["seconds"]) < 1e-3
        assert abs(clip["rotations"].shape[0] - seconds * 30) <= 1
        assert clip["rotations"].shape[1:] == (52, 4) and clip["root"].shape[1] == 3
        assert np.allclose(np.linalg.norm(clip["rotations"], axis=-1), 1.0, atol=1e-3)
        words = clip["words"]
        assert words and all(0 <= s <= e <= seconds + 0.05 for _, s, e in words)
        assert [int(x) for x in clip["part_style_ids"]] == [clip["part_styles"][p] for p in PART_ORDER]
        # The speech is audible and the speaker gestures.
        assert np.abs(clip["audio"]).max() > 3000
        _, pos = fast_fk(clip["rotations"], clip["root"])
        assert np.ptp(pos[:, [20, 21]], axis=0).max() > 0.05


def test_report_on_a_small_corpus(tmp_path):
    from gestura.training.corpus.report import write_report

    corpus = tmp_path / "corpus"
    build_corpus(CorpusSettings(hours=0.2, seed=21, clips_per_shard=16), corpus, workers=2)
    summary = write_report(corpus, tmp_path / "report")
    for name in ("report.md", "report.json", "style_statistics.png", "style_confusion.png", "contact_sheet.png"):
        assert (tmp_path / "report" / name).stat().st_size > 500, name
    assert summary["beat_alignment"]["clips"] >= 1
    assert 0.6 < summary["beat_alignment"]["test_mean"] <= 1.0
    assert 0.0 <= summary["style_classifier"]["test_accuracy"] <= 1.0
    assert "**" in (tmp_path / "report" / "report.md").read_text()
