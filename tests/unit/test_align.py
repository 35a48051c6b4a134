"""Forced alignment of plain text with pocketsphinx, checked against espeak-ng's own word timings."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from gestura.inference.align import align_text, english_coverage, guess_phones, number_words
from gestura.inference.audio import Audio, load_audio
from gestura.inference.errors import InputError
from gestura.inference.transcript import load_transcript

SPEECH = Path(__file__).resolve().parents[2] / "examples" / "speech"
GERMAN = "Der schnelle braune Fuchs springt über den faulen Hund"
JAPANESE = "素早い茶色の狐がのろまな犬を飛び越える"


@pytest.fixture(scope="module")
def hello() -> Audio:
    return load_audio(SPEECH / "hello.wav")


@pytest.fixture(scope="module")
def reference():
    return load_transcript(SPEECH / "hello.TextGrid")  # espeak-ng's word events


@pytest.fixture(scope="module")
def text() -> str:
    return (SPEECH / "hello.txt").read_text()


def starts_error(words, reference, shift: float = 0.0) -> np.ndarray:
    return np.array([abs(w.start - (r.start + shift)) for w, r in zip(words, reference, strict=True)])


def test_example_alignment_matches_espeak_timings(hello, reference, text):
    t0 = time.perf_counter()
    words = load_transcript(SPEECH / "hello.txt", hello)
    assert time.perf_counter() - t0 < 3.0
    assert [w.text for w in words] == [r.text for r in reference]  # as written, punctuation stripped
    assert starts_error(words, reference).max() < 0.15
    ends = np.array([abs(w.end - r.end) for w, r in zip(words, reference, strict=True)])
    assert np.median(ends) < 0.05 and ends.max() < 0.2
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(words))
    assert words[-1].text == "you" and words[-1].end <= hello.duration  # the last word is not swallowed


def test_other_sample_rates_are_resampled(hello, reference, text):
    audio = Audio(soxr.resample(hello.samples, 16000, 22050).astype(np.float32), 22050)
    assert starts_error(align_text(text, audio), reference).max() < 0.15


def test_sixty_seconds_in_a_few_seconds(hello, reference, text):
    audio = Audio(np.tile(hello.samples, 6), 16000)  # ~64 s
    t0 = time.perf_counter()
    words = align_text(" ".join([text] * 6), audio)
    assert time.perf_counter() - t0 < 5.0
    n = len(reference)
    assert len(words) == 6 * n
    for k in range(6):
        assert starts_error(words[k * n : (k + 1) * n], reference, shift=k * hello.duration).max() < 0.15


def test_numbers_and_unknown_words_keep_their_place(hello, reference, text):
    # "Hellow" is not in the dictionary (a guessed pronunciation); "4" is spelled out (and does not match
    # "for", but still takes its slot between "idea" and "you").
    odd = text.replace("Hello", "Hellow").replace("for you", "4 you")
    words = align_text(odd, hello)
    assert [w.text for w in words][:2] == ["Hellow", "there"]
    assert "4" in [w.text for w in words]
    assert starts_error(words, reference).max() < 0.2


def test_transcript_that_does_not_match_fails_clearly(hello):
    with pytest.raises(InputError, match=r"Could not align the transcript to .*hello\.wav.*timed transcript"):
        align_text("the quick brown fox jumps over the lazy dog", hello)


@pytest.mark.parametrize("foreign", [GERMAN, JAPANESE])
def test_non_english_text_is_refused_with_advice(hello, foreign):
    with pytest.raises(InputError, match=r"does not look like English.*English only.*SRT, VTT or TextGrid") as err:
        align_text(foreign, hello)
    assert "prosody-only" in str(err.value)


def test_non_english_plain_text_file(tmp_path, hello):
    path = tmp_path / "de.txt"
    path.write_text(GERMAN, encoding="utf-8")
    with pytest.raises(InputError, match="does not look like English"):
        load_transcript(path, hello)


def test_english_coverage(text):
    assert english_coverage(text) == pytest.approx(1.0)
    assert english_coverage("My friend Siobhan met Nguyen at 5pm yesterday") > 0.8
    assert english_coverage(GERMAN) < 0.5
    assert english_coverage(JAPANESE) == 0.0
    assert english_coverage("") == 0.0


def test_number_words_and_guesses():
    assert number_words(42) == ["forty", "two"]
    assert number_words(1_000_305) == ["one", "million", "three", "hundred", "five"]
    assert guess_phones("gestura").split()[0] == "G"
    assert guess_phones("cat's") == "K AE T Z"
