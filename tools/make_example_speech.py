"""Regenerate examples/speech/: hello.wav and its transcripts (txt, srt, vtt, TextGrid).

Needs the espeak-ng shared library (Debian/Ubuntu: `apt-get install -y espeak-ng`) and the Python packages
numpy, soundfile, soxr, srt, webvtt-py and praatio. Run from the repository root:

    python tools/make_example_speech.py

Word timings come from espeak-ng's own word events (the synthesis callback), so the timed transcripts
are ground truth for the audio, independent of the forced aligner that the tests check against them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import srt
import webvtt
from praatio import textgrid

OUT_DIR = Path(__file__).resolve().parents[1] / "examples" / "speech"
VOICE = b"en-us"
RATE_WPM = 150
PITCH = 45
SAMPLE_RATE = 16000
LEAD_S = 0.25  # a little silence before the first word, as in a real recording

# Phrases, and the pause (ms) spoken after each. The pauses give the demo a few places for rest poses.
PHRASES: list[tuple[str, int]] = [
    ("Hello there.", 300),
    ("I have a big idea for you, and this is it.", 700),
    ("Maybe we can all work together.", 700),
    ("No, no, stop!", 300),
    ("Let me show you.", 0),
]


# espeak_EVENT from speak_lib.h; only the fields up to audio_position are read.
class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def _load_espeak() -> ctypes.CDLL:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise SystemExit(f"espeak-ng library not found ({exc}); install it: apt-get install -y espeak-ng") from exc


def synthesize(ssml: str) -> tuple[np.ndarray, int, list[tuple[int, int, float]]]:
    """Speak SSML; return (float32 samples, rate, [(text_position (0-based), length, start_s)] per word)."""
    lib = _load_espeak()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 500, None, 0)
    if rate <= 0:
        raise SystemExit("espeak_Initialize failed")
    lib.espeak_SetVoiceByName(VOICE)
    lib.espeak_SetParameter(1, RATE_WPM, 0)  # espeakRATE
    lib.espeak_SetParameter(3, PITCH, 0)  # espeakPITCH
    chunks: list[np.ndarray] = []
    words: list[tuple[int, int, float]] = []

    def on_audio(wav, n, events):  # type: ignore[no-untyped-def]
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_WORD:
                words.append((ev.text_position - 1, ev.length, ev.audio_position / 1000.0))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)  # keep a reference while espeak runs
    lib.espeak_SetSynthCallback(callback)
    data = ssml.encode("utf-8")
    err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _SSML, None, None)
    lib.espeak_Synchronize()
    if err != 0:
        raise SystemExit(f"espeak_Synth failed with code {err}")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return samples, rate, words


def _word_ends(samples: np.ndarray, rate: int, starts: list[float]) -> list[float]:
    """A word ends where its audio falls silent before the next word starts (espeak reports starts only)."""
    hop = rate // 100
    n = len(samples) // hop
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = rms > 10 ** (-40 / 20)
    ends = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(samples) / rate
        a, b = int(start * 100), min(int(stop * 100), n)
        active = np.flatnonzero(loud[a:b])
        ends.append((a + active[-1] + 1) / 100 if len(active) else stop)
    return ends


def main() -> None:
    ssml_parts, text_parts = ["<speak>"], []
    for phrase, pause_ms in PHRASES:
        ssml_parts.append(phrase + (f' <break time="{pause_ms}ms"/> ' if pause_ms else " "))
        text_parts.append(phrase)
    ssml_parts.append("</speak>")
    ssml = "".join(ssml_parts)
    samples, rate, events = synthesize(ssml)

    # Map each word event back to the word written at its text position.
    words = []
    for pos, _length, start in events:
        m = re.match(r"[\w']+", ssml[pos:])
        if m:
            words.append((m.group(0), start))
    expected = re.findall(r"[\w']+", " ".join(text_parts))
    if [w for w, _ in words] != expected:
        raise SystemExit(f"espeak word events do not match the text: {[w for w, _ in words]} vs {expected}")

    audio = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)
    audio *= 0.7 / max(float(np.max(np.abs(audio))), 1e-6)  # leave headroom, consistent level
    audio = np.concatenate([np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32), audio])
    starts = [s + LEAD_S for _, s in words]
    ends = _word_ends(audio, SAMPLE_RATE, starts)
    timed = [(w, round(s, 3), round(e, 3)) for (w, _), s, e in zip(words, starts, ends, strict=True)]
    duration = len(audio) / SAMPLE_RATE

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sf.write(OUT_DIR / "hello.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    (OUT_DIR / "hello.txt").write_text(" ".join(text_parts) + "\n", encoding="utf-8")

    # One cue per phrase, spanning its first word's start to its last word's end.
    cues, i = [], 0
    for phrase, _ in PHRASES:
        n = len(re.findall(r"[\w']+", phrase))
        cues.append((phrase, timed[i][1], timed[i + n - 1][2]))
        i += n
    subs = [
        srt.Subtitle(k + 1, datetime.timedelta(seconds=a), datetime.timedelta(seconds=b), text)
        for k, (text, a, b) in enumerate(cues)
    ]
    (OUT_DIR / "hello.srt").write_text(srt.compose(subs), encoding="utf-8")

    vtt = webvtt.WebVTT()
    for text, a, b in cues:
        vtt.captions.append(webvtt.Caption(_vtt_time(a), _vtt_time(b), text))
    vtt.save(str(OUT_DIR / "hello.vtt"))

    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", [(s, e, w) for w, s, e in timed], 0.0, duration))
    tg.addTier(textgrid.IntervalTier("phrases", [(a, b, t) for t, a, b in cues], 0.0, duration))
    tg.save(str(OUT_DIR / "hello.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    print(f"wrote {OUT_DIR} ({duration:.2f} s, {len(timed)} words)")


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


if __name__ == "__main__":
    main()
