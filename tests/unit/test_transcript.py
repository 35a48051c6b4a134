"""Transcript parsing: word timings from SRT, WebVTT, TextGrid and plain text, and the messages users see."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.audio import Audio
from gestura.inference.errors import InputError
from gestura.inference.transcript import (
    Word,
    load_transcript,
    parse_srt,
    parse_textgrid,
    parse_vtt,
    text_tokens,
    words_from_segments,
)

SPEECH = Path(__file__).resolve().parents[2] / "examples" / "speech"
HELLO_WORDS = (SPEECH / "hello.txt").read_text().replace(",", "").replace(".", "").replace("!", "").split()

SRT = """1
00:00:01,000 --> 00:00:02,000
Hello, world!

2
00:00:02,500 --> 00:00:04,000
<i>I don't</i> know... [laughs]
"""

VTT = """WEBVTT

00:00:01.000 --> 00:00:02.000
Hello, world!

00:00:02.500 --> 00:00:04.000
<v Anna>I don't know</v>
"""

TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 3
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 3
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 3
            text = "HH"
    item [2]:
        class = "IntervalTier"
        name = "Words"
        xmin = 0
        xmax = 3
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = "<sil>"
        intervals [2]:
            xmin = 0.5
            xmax = 1.1
            text = "Grüße"
        intervals [3]:
            xmin = 1.1
            xmax = 1.3
            text = "sp"
        intervals [4]:
            xmin = 1.3
            xmax = 2.0
            text = "aus"
        intervals [5]:
            xmin = 2.0
            xmax = 3
            text = ""
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


def assert_well_formed(words: list[Word]) -> None:
    for a, b in itertools.pairwise(words):
        assert a.start <= b.start and a.end <= b.start + 1e-9
    assert all(w.end >= w.start for w in words)


# --- formats ----------------------------------------------------------------------------------------------


def test_parse_srt_splits_cues_into_words():
    words = parse_srt(SRT)
    assert texts(words) == ["Hello", "world", "I", "don't", "know"]  # tags and [laughs] dropped
    assert words[0].start == pytest.approx(1.0) and words[1].end == pytest.approx(2.0)
    assert words[2].start == pytest.approx(2.5) and words[-1].end == pytest.approx(4.0)
    assert_well_formed(words)


def test_parse_vtt_strips_voice_tags(tmp_path):
    words = parse_vtt(write(tmp_path, "a.vtt", VTT))
    assert texts(words) == ["Hello", "world", "I", "don't", "know"]
    assert words[2].start == pytest.approx(2.5)


def test_parse_textgrid_picks_the_word_tier_and_skips_silence(tmp_path):
    words = parse_textgrid(write(tmp_path, "a.TextGrid", TEXTGRID))
    assert texts(words) == ["Grüße", "aus"]
    assert (words[0].start, words[0].end) == pytest.approx((0.5, 1.1))
    assert (words[1].start, words[1].end) == pytest.approx((1.3, 2.0))


def test_textgrid_without_a_word_tier_uses_the_first_interval_tier(tmp_path):
    words = parse_textgrid(write(tmp_path, "a.TextGrid", TEXTGRID.replace('"Words"', '"spk1"')))
    assert texts(words) == ["HH"]


def test_textgrid_utf16_as_praat_writes_it(tmp_path):
    path = write(tmp_path, "u16.TextGrid", "\ufeff" + TEXTGRID, encoding="utf-16-le")
    assert texts(load_transcript(path)) == ["Grüße", "aus"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1"])
def test_encodings(tmp_path, encoding):
    path = write(tmp_path, "enc.srt", SRT.replace("Hello", "Café"), encoding=encoding)
    assert texts(load_transcript(path))[0] == "Café"


def test_example_transcripts_agree():
    ref = load_transcript(SPEECH / "hello.TextGrid")
    assert texts(ref) == HELLO_WORDS
    for name in ("hello.srt", "hello.vtt"):
        words = load_transcript(SPEECH / name)
        assert texts(words) == HELLO_WORDS
        assert_well_formed(words)
        # Cue-level timings spread by syllables stay close to the real word times.
        err = np.array([abs(a.start - b.start) for a, b in zip(words, ref, strict=True)])
        assert err.max() < 0.6 and np.median(err) < 0.25


def test_suffix_is_case_insensitive_and_txt_with_srt_content_is_sniffed(tmp_path):
    assert texts(load_transcript(write(tmp_path, "A.SRT", SRT)))[0] == "Hello"
    assert texts(load_transcript(write(tmp_path, "subs.txt", SRT)))[0] == "Hello"
    assert texts(load_transcript(write(tmp_path, "subs.txt", VTT)))[0] == "Hello"


def test_non_english_timed_transcripts_work(tmp_path):
    srt_ja = "1\n00:00:00,000 --> 00:00:02,000\nこんにちは 世界\n"
    words = load_transcript(write(tmp_path, "ja.srt", srt_ja))
    assert texts(words) == ["こんにちは", "世界"]
    assert words[0].end == pytest.approx(2.0 * 5 / 7)  # 5 and 2 characters


# --- window offset ----------------------------------------------------------------------------------------


def test_offset_shifts_and_drops_words_outside_the_window(tmp_path):
    path = write(tmp_path, "a.srt", SRT)
    audio = Audio(np.zeros(int(1.8 * 16000), np.float32), 16000)  # window 2.0-3.8 s of the transcript
    words = load_transcript(path, audio, offset_s=2.0)
    assert texts(words) == ["I", "don't", "know"]
    assert words[0].start == pytest.approx(0.5)
    assert words[-1].end == pytest.approx(1.8)  # clipped to the window's end
    assert texts(load_transcript(path, offset_s=2.2)) == ["I", "don't", "know"]  # no audio: no end limit
    with pytest.raises(InputError, match=r"No words of transcript .*a\.srt .*fall inside the audio window"):
        load_transcript(path, audio, offset_s=10.0)


# --- splitting and ordering -------------------------------------------------------------------------------


def test_words_spread_by_syllables():
    words = words_from_segments([("a wonderful day", 0.0, 5.0)])  # 1 + 3 + 1 syllables
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx([0, 1, 1, 4, 4, 5])


def test_overlapping_and_unsorted_segments_are_fixed():
    words = words_from_segments([("late", 3.0, 4.0), ("early", 1.0, 3.5), ("backwards", 6.0, 5.0), ("—", 0, 9)])
    assert texts(words) == ["early", "late", "backwards"]
    assert words[0].end == pytest.approx(3.0)  # trimmed to where the next word starts
    assert (words[2].start, words[2].end) == (5.0, 6.0)
    assert_well_formed(words)


def test_text_tokens():
    assert text_tokens("Don\u2019t STOP, well-known rock'n'roll! 42") == [
        "don't",
        "stop",
        "well",
        "known",
        "rock'n'roll",
        "42",
    ]
    assert text_tokens("...") == []


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"Transcript file not found: .*gone\.srt"):
        load_transcript(tmp_path / "gone.srt")


@pytest.mark.parametrize("name", ["e.srt", "e.vtt", "e.TextGrid", "e.txt"])
def test_empty_file(tmp_path, name):
    content = {"e.vtt": "WEBVTT\n", "e.TextGrid": TEXTGRID.replace('"Grüße"', '""').replace('"aus"', '""')}
    path = write(tmp_path, name, content.get(name, "  \n"))
    with pytest.raises(InputError, match=rf"{name.replace('.', '[.]')} is empty"):
        load_transcript(path, Audio(np.zeros(16000, np.float32), 16000))


def test_malformed_srt(tmp_path):
    path = write(tmp_path, "bad.srt", "1\n00:00:01,000 --> banana\nHello\n")
    with pytest.raises(InputError, match=r"bad\.srt is not valid SRT"):
        load_transcript(path)


def test_malformed_vtt(tmp_path):
    path = write(tmp_path, "bad.vtt", "NOT A VTT FILE\n\n00:01 --> 00:02\nhi\n")
    with pytest.raises(InputError, match=r"bad\.vtt is not valid WebVTT"):
        load_transcript(path)


def test_malformed_textgrid(tmp_path):
    path = write(tmp_path, "bad.TextGrid", 'File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = oops\n')
    with pytest.raises(InputError, match=r"bad\.TextGrid is not a valid Praat TextGrid"):
        load_transcript(path)


def test_plain_text_needs_audio(tmp_path):
    with pytest.raises(InputError, match=r"plain text, which needs the audio.*timed transcript"):
        load_transcript(write(tmp_path, "a.txt", "hello there"))


def test_binary_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match="not a text file"):
        load_transcript(path)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        load_transcript(tmp_path)
