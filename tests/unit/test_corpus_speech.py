"""Corpus speech (espeak-ng via espeakng-loader, word timings from its events) and the sentence generator."""

from __future__ import annotations

import collections
import hashlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")
pytest.importorskip("soxr")

from gestura.inference.transcript import _strip_punct, text_tokens  # noqa: E402
from gestura.training.corpus import sentences as sent  # noqa: E402
from gestura.training.corpus.speech import (  # noqa: E402
    SAMPLE_RATE,
    SpeechError,
    Synthesizer,
    Utterance,
    Voice,
    join_utterances,
    random_voice,
    voice_catalogue,
)

ROOT = Path(__file__).resolve().parents[2]
US = Voice("en-us", 160, 50, 50)


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer()


def _tokens(text: str) -> list[str]:
    return [w for w in (_strip_punct(t) for t in re.findall(r"[^\s\u2013\u2014]+", text)) if w]


def _check_words(u: Utterance) -> None:
    assert [w.text for w in u.words] == _tokens(u.text)
    prev_end = 0.0
    for w in u.words:
        assert prev_end - 1e-6 <= w.start < w.end <= u.duration + 1e-6, w
        prev_end = w.end


def test_audio_format_and_word_list(synth: Synthesizer) -> None:
    u = synth.speak("Hello there! I don't think that's right, do you?", US)
    assert u.sample_rate == SAMPLE_RATE == 16000
    assert u.samples.dtype == np.float32 and u.samples.ndim == 1
    assert 1.0 < u.duration < 5.0
    assert 0.6 < float(np.max(np.abs(u.samples))) <= 0.7 + 1e-6  # peak-normalised
    assert u.text.startswith("Hello") and u.voice == US
    _check_words(u)


def test_every_written_word_is_timed_including_ones_espeak_merges(synth: Synthesizer) -> None:
    # espeak gives "of the", "there were", "has not", "for a" a single word event; both words are kept.
    text = "None of the reports arrived. There were five. She has not seen it for a while, 42 times in 1984."
    u = synth.speak(text, US)
    _check_words(u)
    by_text = {w.text: w for w in u.words}
    assert by_text["42"].end - by_text["42"].start > 0.3  # spans "forty two", the written token kept
    assert by_text["1984"].end - by_text["1984"].start > 0.6  # "nineteen eighty four"


def test_word_starts_match_forced_alignment(synth: Synthesizer) -> None:
    pytest.importorskip("pocketsphinx")
    from gestura.inference.align import align_text
    from gestura.inference.audio import Audio

    lead = 0.25  # pocketsphinx likes some silence before the first word
    cases = [
        ("I have a big idea for you, and this is it.", US),
        ("That was the idea all along.", Voice("en-us", 150, 50, 50)),  # "was the": one espeak event
        ("Is this the big idea? No, never! Maybe we can all work together.", Voice("en-us+f3", 190, 60, 50)),
    ]
    for text, voice in cases:
        u = synth.speak(text, voice)
        pad = np.zeros(int(lead * SAMPLE_RATE), np.float32)
        aligned = align_text(text, Audio(np.concatenate([pad, u.samples, pad]), SAMPLE_RATE))
        assert [w.text for w in aligned] == [w.text for w in u.words]
        diffs = [abs(w.start - (a.start - lead)) for w, a in zip(u.words, aligned, strict=True)]
        assert max(diffs) < 0.05, (text, diffs)


def test_audio_between_words_is_quieter_than_words(synth: Synthesizer) -> None:
    u = synth.speak("First, the small one. Second, the tiny one. And third, everything together!", US)

    def rms(a: float, b: float) -> float:
        seg = u.samples[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]
        return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))

    gaps = [(w.end, n.start) for w, n in zip(u.words, u.words[1:], strict=False) if n.start - w.end > 0.08]
    assert len(gaps) >= 3  # the sentence ends and commas
    inside = np.median([rms(w.start, w.end) for w in u.words])
    for a, b in gaps:
        assert rms(a, b) < 0.1 * inside


def test_deterministic_whatever_was_spoken_before(synth: Synthesizer) -> None:
    text, voice = "Wait, this is huge: 3.5 metres between them!", Voice("en-gb-x-rp+klatt2", 175, 40, 70)
    a = synth.speak(text, voice)
    synth.speak("Something else entirely, in another voice.", Voice("en-029+f4", 130, 80, 20))
    b = synth.speak(text, voice)
    assert a.samples.tobytes() == b.samples.tobytes()
    assert a.words == b.words


def test_deterministic_across_processes(synth: Synthesizer) -> None:
    text, voice = "No, never! Maybe we can all work together.", Voice("en-us+m3", 150, 45, 60)
    here = hashlib.sha256(synth.speak(text, voice).samples.tobytes()).hexdigest()
    code = textwrap.dedent(f"""
        import hashlib, importlib.util, sys
        spec = importlib.util.spec_from_file_location("gestura", {str(ROOT / "__init__.py")!r},
                                                      submodule_search_locations=[{str(ROOT)!r}])
        m = importlib.util.module_from_spec(spec); sys.modules["gestura"] = m; spec.loader.exec_module(m)
        from gestura.training.corpus.speech import Synthesizer, Voice
        u = Synthesizer().speak({text!r}, Voice{tuple(vars(voice).values())!r})
        print(hashlib.sha256(u.samples.tobytes()).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == here


def test_rate_and_voice_change_the_audio(synth: Synthesizer) -> None:
    text = "The whole project was enormous, so we put everything together."
    slow = synth.speak(text, Voice("en-us", 120, 50, 50))
    fast = synth.speak(text, Voice("en-us", 220, 50, 50))
    assert fast.duration < 0.75 * slow.duration
    assert fast.words[-1].end < slow.words[-1].end
    other = synth.speak(text, Voice("en+f2", 160, 50, 50))
    assert other.samples.tobytes() != synth.speak(text, US).samples.tobytes()


def test_catalogue_voices_all_load_and_differ(synth: Synthesizer) -> None:
    # espeak silently falls back to the plain voice for an unknown variant; distinct audio shows each loaded.
    catalogue = voice_catalogue()
    assert len(catalogue) >= 100 and len({v.name for v in catalogue}) == len(catalogue)
    digests = set()
    for v in catalogue:
        u = synth.speak("Hello there, this is a test.", v)  # accents differ only on some sounds: "there"
        assert [w.text for w in u.words] == ["Hello", "there", "this", "is", "a", "test"], v
        digests.add(hashlib.sha1(u.samples.tobytes()).hexdigest())
    assert len(digests) == len(catalogue)


def test_random_voice() -> None:
    a = [random_voice(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(4)
    voices = [random_voice(rng) for _ in range(300)]
    assert all(120 <= v.rate_wpm <= 220 and 0 <= v.pitch <= 99 and 0 <= v.pitch_range <= 99 for v in voices)
    assert len({v.name for v in voices}) > 60


def test_errors(synth: Synthesizer) -> None:
    with pytest.raises(SpeechError, match="no voice"):
        synth.speak("Hello.", Voice("xx-nowhere", 160, 50, 50))
    with pytest.raises(SpeechError, match="variant"):
        synth.speak("Hello.", Voice("en-us+nonexistent", 160, 50, 50))
    with pytest.raises(ValueError):
        Voice("en-us", 20, 50, 50)
    with pytest.raises(ValueError):
        Voice("en-us", 160, 120, 50)
    with pytest.raises(ValueError):
        synth.speak("   ", US)


def test_join_utterances(synth: Synthesizer) -> None:
    a, b = synth.speak("Stop right there.", US), synth.speak("Wait for me!", US)
    j = join_utterances([a, b], [1.5])
    assert j.duration == pytest.approx(a.duration + 1.5 + b.duration, abs=1e-3)
    assert [w.text for w in j.words] == ["Stop", "right", "there", "Wait", "for", "me"]
    assert j.words[3].start == pytest.approx(b.words[0].start + a.duration + 1.5, abs=1e-3)
    assert j.text == "Stop right there. Wait for me!"


# --- sentences ---------------------------------------------------------------------------------------------


def test_sentences_deterministic() -> None:
    one = [sent.make_sentence(np.random.default_rng(11)) for _ in range(3)]
    assert one[0] == one[1] == one[2]
    a, b = np.random.default_rng(12), np.random.default_rng(12)
    assert [sent.make_sentence(a) for _ in range(200)] == [sent.make_sentence(b) for _ in range(200)]
    passages = [sent.make_passage(np.random.default_rng(5), 12.0, 160) for _ in range(2)]
    assert passages[0] == passages[1]


def test_sentences_unique_and_varied() -> None:
    rng = np.random.default_rng(1)
    sentences = [sent.make_sentence(rng) for _ in range(2000)]
    assert len(set(sentences)) / len(sentences) > 0.9
    assert all(s.isascii() and s[0].isupper() and s[-1] in ".?!" for s in sentences)
    assert sum(s.endswith("?") for s in sentences) > 150  # questions
    assert sum(bool(re.search(r"\b(no|not|never|don't|can't|won't|nothing)\b", s, re.I)) for s in sentences) > 250
    assert sum(bool(re.search(r"\d", s)) for s in sentences) > 80  # numbers
    assert sum(s.startswith(("First,", "One,")) or s.count(",") >= 3 for s in sentences) > 80  # lists
    lengths = [len(s.split()) for s in sentences]
    assert min(lengths) <= 2 and max(lengths) >= 25  # short exclamations and long multi-clause sentences


def test_sentences_cover_the_gesture_lexicon() -> None:
    from gestura.inference import rule_engine

    lexicon = set(sent.LEXICON_WORDS) | set(getattr(rule_engine, "WORD_TO_GESTURE", {}))
    rng = np.random.default_rng(2)
    counts = collections.Counter(t for _ in range(5000) for t in text_tokens(sent.make_sentence(rng)))
    missing = sorted(w for w in lexicon if counts[w] == 0)
    assert not missing


def test_passage_duration_near_target(synth: Synthesizer) -> None:
    rng = np.random.default_rng(9)
    ratios = []
    for target in (4.0, 10.0, 20.0):
        voice = random_voice(rng)
        text = sent.make_passage(rng, target, voice.rate_wpm)
        u = synth.speak(text, voice)
        _check_words(u)
        ratios.append(u.duration / target)
    assert all(0.6 < r < 1.5 for r in ratios), ratios
