"""Speech for the corpus: espeak-ng (the library and data that PyPI ``espeakng-loader`` ships) with exact word
timings from espeak's own word events, resampled to 16 kHz.

Word timings. ``start`` is the audio position of espeak's word event (the synthesis callback reports where
each word's audio begins). espeak reports no word ends, so ``end`` is where that word's audio goes quiet
(last 10 ms frame above -40 dBFS after peak normalisation) before the next word event, as in
``tools/make_example_speech.py``.

Word text. Each ``Word`` keeps the token as written (split at whitespace and dashes, stripped of surrounding
punctuation, as ``inference.transcript`` does), with the time span of everything espeak said for it: "42"
stays "42" and spans "forty two"; "3.5" spans "three point five"; "don't" is one word. espeak can give one
written token several word events (numbers), and gives none to a word it reads as one with the word before
(its dictionary's multi-word entries: "of the", "there were", "has not", "for a"; about 1.6% of words in
generated sentences): such a word shares the previous word's span, split by rough phoneme counts (within
about 50 ms of a forced alignment). Tokens that are only punctuation ("&", "--") are left out, though espeak
may speak them. So every written word is in ``words``, in order.

Determinism. espeak-ng keeps synthesis state between calls (flutter phase, wave phase, noise generator,
resonators), so speaking the same text twice in one process gives slightly different samples. To make the
same (text, voice) give byte-identical audio whatever was spoken before, the process initialises espeak once
and never synthesises itself: each ``speak`` forks a child that sets the voice, synthesises from that
pristine state and sends the samples and events back through a pipe (a few ms per call; POSIX only).
``Synthesizer(deterministic=False)`` synthesises in-process instead (faster; not reproducible), and after
that the process's espeak state is no longer pristine, so deterministic ``speak`` refuses to run there.

Loading. espeak_Initialize runs with espeakINITIALIZE_DONT_EXIT, so a broken data folder is a SpeechError
rather than espeak calling exit(); a missing package, library or voice is a SpeechError that says which.
An unknown variant ("en-us+nope") is an error too (espeak itself silently speaks the plain voice).

Threads. espeak-ng is one global state per process and not thread-safe: use one ``Synthesizer`` per process
(the corpus builder runs one per worker process) and call it from one thread; ``speak`` also holds a lock.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...inference.transcript import Word, _strip_punct

SAMPLE_RATE = 16000
PEAK = 0.7  # utterances are peak-normalised to this (headroom, consistent level)
SILENCE_DBFS = -40.0  # a word's audio has ended where 10 ms frames stay below this (after normalisation)

# Accents (espeak-ng voice files under lang/gmw; "en" is British English) and voice variants (voices/!v)
# that load with espeakng-loader 0.2.4's data and sound like speech. Left out: "en-gb" (not a voice name,
# espeak reports EE_NOT_FOUND), whisper (no voicing, so no pitch), croak, robot and novelty variants.
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
)
RATE_RANGE = (80, 450)  # espeak's espeakRATE limits (words per minute)

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data folder as an error instead of exit()ing the process
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5  # espeakEVENT_MSG_TERMINATED
_RATE, _VOLUME, _PITCH, _RANGE, _PUNCTUATION, _CAPITALS, _WORDGAP = 1, 2, 3, 4, 5, 6, 7
_EE_OK = 0


class SpeechError(RuntimeError):
    """espeak-ng could not be loaded or could not speak."""


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice, with an optional variant: "en-us", "en", "en-us+f3", "en-gb-x-rp+klatt2"
    rate_wpm: int  # words per minute; random_voice draws 120..220 (espeak allows 80..450)
    pitch: int  # 0..99 (espeakPITCH)
    pitch_range: int  # 0..99 (espeakRANGE: how much the pitch moves; 0 is a monotone)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9-]+(\+[A-Za-z0-9]+)?", self.name):
            raise ValueError(f"bad espeak voice name {self.name!r}")
        if not RATE_RANGE[0] <= self.rate_wpm <= RATE_RANGE[1]:
            raise ValueError(f"rate_wpm {self.rate_wpm} outside {RATE_RANGE}")
        for key in ("pitch", "pitch_range"):
            if not 0 <= getattr(self, key) <= 99:
                raise ValueError(f"{key} {getattr(self, key)} outside 0..99")


def voice_catalogue() -> list[Voice]:
    """Every accent with every variant (128 voices), at a middle rate and pitch; ``random_voice`` varies those."""
    return [
        Voice(f"{accent}+{variant}" if variant else accent, 165, 50, 50) for accent in ACCENTS for variant in VARIANTS
    ]


def random_voice(rng: np.random.Generator) -> Voice:
    """A catalogue voice with a random rate (120..220 wpm), pitch (25..75) and pitch range (20..90)."""
    names = [v.name for v in voice_catalogue()]
    name = names[int(rng.integers(len(names)))]
    return Voice(name, int(rng.integers(120, 221)), int(rng.integers(25, 76)), int(rng.integers(20, 91)))


@dataclass
class Utterance:
    samples: np.ndarray  # float32 mono, peak-normalised to PEAK
    sample_rate: int  # SAMPLE_RATE
    words: list[Word]  # seconds from the start of samples (see the module docstring)
    text: str
    voice: Voice

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


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


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

# espeak's state is process-wide: load and initialise it once per process.
_LIB: ctypes.CDLL | None = None
_LIB_PID = -1
_NATIVE_RATE = 0
_DATA_PATH = ""
_DIRTY_PIDS: set[int] = set()  # processes that synthesised in-process: their espeak state is not the initial one
_LOCK = threading.Lock()


def _load() -> tuple[ctypes.CDLL, int]:
    global _LIB, _LIB_PID, _NATIVE_RATE, _DATA_PATH
    if _LIB is not None and _LIB_PID == os.getpid():
        return _LIB, _NATIVE_RATE
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechError(
            "espeak-ng is missing: the corpus needs the PyPI package espeakng-loader (pinned in "
            "requirements; it ships libespeak-ng and its data). Install the training requirements."
        ) from exc
    lib_path = espeakng_loader.get_library_path()
    try:
        data_path = espeakng_loader.get_data_path()
    except RuntimeError as exc:
        raise SpeechError(f"espeakng-loader's espeak-ng-data folder is missing: {exc}") from exc
    try:
        lib = ctypes.CDLL(lib_path)
    except OSError as exc:
        raise SpeechError(f"could not load espeak-ng from {lib_path}: {exc}") from exc
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise SpeechError(f"espeak_Initialize failed (status {rate}) with the data at {data_path}")
    _LIB, _LIB_PID, _NATIVE_RATE, _DATA_PATH = lib, os.getpid(), int(rate), data_path
    return lib, int(rate)


def _synth_raw(lib: ctypes.CDLL, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Speak in this process: (int16 samples at the native rate, [(0-based char index, audio ms)] per word event)."""
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int]] = []

    def on_audio(wav: Any, n: int, ev: Any) -> int:
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while ev[i].type != _EVENT_LIST_TERMINATED:
            if ev[i].type == _EVENT_WORD:
                events.append((ev[i].text_position - 1, ev[i].audio_position))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)  # keep a reference while espeak runs
    lib.espeak_SetSynthCallback(callback)
    status = lib.espeak_SetVoiceByName(voice.name.encode())
    if status != _EE_OK:
        raise SpeechError(f"espeak-ng has no voice {voice.name!r} (status {status})")
    for param, value in ((_RATE, voice.rate_wpm), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range),
                         (_VOLUME, 100), (_WORDGAP, 0), (_PUNCTUATION, 0), (_CAPITALS, 0)):
        lib.espeak_SetParameter(param, value, 0)
    lib.espeak_ng_SetRandSeed(1)
    data = text.encode("utf-8") + b"\0"
    buf = ctypes.create_string_buffer(data, len(data))
    status = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    if status != _EE_OK:
        raise SpeechError(f"espeak_Synth failed (status {status}) for {text[:60]!r}")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return samples.astype(np.int16, copy=False), events


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        block = os.read(fd, 1 << 20)
        if not block:
            return b"".join(parts)
        parts.append(block)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _synth_forked(lib: ctypes.CDLL, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Speak in a forked child, so every call starts from the same espeak state."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesise, send, leave without running any of the parent's cleanup
        code = 0
        try:
            os.close(read_fd)
            samples, events = _synth_raw(lib, text, voice)
            ev = np.asarray(events, dtype=np.int64).reshape(-1, 2)
            payload = struct.pack("<cqq", b"k", len(samples), len(ev)) + samples.tobytes() + ev.tobytes()
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            payload = b"e" + f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
            code = 1
        try:
            _write_all(write_fd, payload)
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        payload = _read_all(read_fd)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if not payload:
        raise SpeechError(f"the espeak-ng child process died (wait status {status}) speaking {text[:60]!r}")
    if payload[:1] == b"e":
        raise SpeechError(payload[1:].decode("utf-8", "replace"))
    _, n_samples, n_events = struct.unpack_from("<cqq", payload)
    off = struct.calcsize("<cqq")
    samples = np.frombuffer(payload, np.int16, n_samples, off)
    ev = np.frombuffer(payload, np.int64, 2 * n_events, off + 2 * n_samples).reshape(-1, 2)
    return samples, [(int(a), int(b)) for a, b in ev]


_TOKEN = re.compile(r"[^\s\u2013\u2014]+")  # split at whitespace and en/em dashes
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})  # 1:1, keeps positions


def _word_ends(samples: np.ndarray, rate: int, starts: list[float], bounds: list[float]) -> list[float]:
    """Each word ends at its last loud 10 ms frame before ``bounds[i]`` (the next word event, or the end)."""
    hop = rate // 100
    n = len(samples) // hop
    rms = np.sqrt(np.mean(samples[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = rms > 10 ** (SILENCE_DBFS / 20)
    ends = []
    for start, stop in zip(starts, bounds, strict=True):
        a, b = int(round(start * 100)), min(int(stop * 100), n)
        active = np.flatnonzero(loud[a:b])
        end = (a + active[-1] + 1) / 100 if len(active) else stop
        ends.append(min(max(end, start + 0.01), stop))
    return ends


def _words_from_events(text: str, events: list[tuple[int, int]], samples: np.ndarray, rate: int) -> list[Word]:
    tokens = [(m.start(), m.end(), _strip_punct(m.group(0))) for m in _TOKEN.finditer(text)]
    token_ends = [e for _, e, _ in tokens]
    duration = len(samples) / rate
    # (token index, time) per event: the token holding the event's character, or the next token.
    timed = [(int(np.searchsorted(token_ends, pos, side="right")), min(ms / 1000.0, duration)) for pos, ms in events]
    first_time: dict[int, float] = {}
    for k, t in timed:
        if k < len(tokens) and tokens[k][2]:
            first_time.setdefault(k, t)
    order: list[int] = []
    for k in sorted(first_time):  # words in text order with rising starts (an out-of-order event is dropped)
        if not order or first_time[k] > first_time[order[-1]]:
            order.append(k)
    starts = [first_time[k] for k in order]
    # A word's audio runs until the first event of a later token (events inside it, "forty | two", extend it).
    bounds = [min([t for j, t in timed if j > k and t > s], default=duration)
              for k, s in zip(order, starts, strict=True)]
    ends = _word_ends(samples, rate, starts, bounds)
    # Tokens between event tokens that espeak read together with the previous word ("of the", "there were",
    # "has not": its dictionary's multi-word entries) share that word's span, split by rough phoneme counts.
    words: list[Word] = []
    for i, (k, start, end) in enumerate(zip(order, starts, ends, strict=True)):
        stop = order[i + 1] if i + 1 < len(order) else len(tokens)
        group = [k] + [j for j in range(k + 1, stop) if tokens[j][2] and j not in first_time]
        weights = np.array([_phoneme_guess(tokens[j][2]) for j in group], dtype=np.float64)
        edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        words += [Word(tokens[j][2], round(float(edges[n]), 4), round(float(edges[n + 1]), 4))
                  for n, j in enumerate(group)]
    return words


_DIGRAPHS = re.compile(r"th|sh|ch|ng|ph|ck|wh|qu|ee|oo|ea|ou|ai|ay|oa|([a-z])\1")


def _phoneme_guess(word: str) -> float:
    """Rough phoneme count of a written word (for splitting a span that espeak gave several words)."""
    w = word.lower()
    if any(ch.isdigit() for ch in w):
        from ...inference.align import _spell_number

        spoken = [s for piece in re.findall(r"\d+(?:\.\d+)?", w) for s in _spell_number(piece)]
        return float(sum(_phoneme_guess(s) for s in spoken) or 2)
    w = re.sub(r"[^a-z]", "", w)
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiouy":
        w = w[:-1]  # silent final e
    return float(max(1, len(_DIGRAPHS.sub("x", w))))


class Synthesizer:
    """English speech with word timings. One per process, used from one thread (see the module docstring)."""

    def __init__(self, *, deterministic: bool = True) -> None:
        if deterministic and not hasattr(os, "fork"):
            raise SpeechError("deterministic synthesis forks a child per utterance; this platform has no fork()")
        self._lib, self.native_rate = _load()
        self.deterministic = deterministic
        self._variants_dir = os.path.join(_DATA_PATH, "voices", "!v")

    def speak(self, text: str, voice: Voice) -> Utterance:
        """Speak ``text`` (plain text, not SSML) in ``voice``: 16 kHz float32 samples and word timings."""
        text = text.translate(_QUOTES)
        if not text.strip():
            raise ValueError("nothing to speak: the text is empty")
        variant = voice.name.partition("+")[2]
        if variant and not os.path.isfile(os.path.join(self._variants_dir, variant)):
            # espeak would silently fall back to the plain voice
            raise SpeechError(f"espeak-ng has no voice variant {variant!r} (voice {voice.name!r})")
        with _LOCK:
            if self.deterministic:
                if os.getpid() in _DIRTY_PIDS:
                    raise SpeechError("this process already synthesised in-process (deterministic=False), so "
                                      "deterministic speech is no longer reproducible here; use another process")
                raw, events = _synth_forked(self._lib, text, voice)
            else:
                _DIRTY_PIDS.add(os.getpid())
                raw, events = _synth_raw(self._lib, text, voice)
        if len(raw) == 0:
            raise SpeechError(f"espeak-ng produced no audio for {text[:60]!r}")
        import soxr

        audio = soxr.resample(raw.astype(np.float32) / 32768.0, self.native_rate, SAMPLE_RATE).astype(np.float32)
        audio *= np.float32(PEAK / max(float(np.max(np.abs(audio))), 1e-6))
        words = _words_from_events(text, events, audio, SAMPLE_RATE)
        return Utterance(audio, SAMPLE_RATE, words, text, voice)


def join_utterances(parts: list[Utterance], gaps_s: list[float]) -> Utterance:
    """Concatenate utterances with ``gaps_s[i]`` seconds of silence after part i (one gap fewer than parts):
    a passage with chosen pauses (short ones for holds, long ones for rests)."""
    if not parts:
        raise ValueError("nothing to join")
    if len(gaps_s) != len(parts) - 1:
        raise ValueError(f"{len(parts)} parts need {len(parts) - 1} gaps, got {len(gaps_s)}")
    rate = parts[0].sample_rate
    pieces: list[np.ndarray] = []
    words: list[Word] = []
    offset = 0
    for i, part in enumerate(parts):
        if part.sample_rate != rate or part.voice != parts[0].voice:
            raise ValueError("utterances to join must share the sample rate and the voice")
        t0 = offset / rate
        words += [Word(w.text, round(w.start + t0, 4), round(w.end + t0, 4)) for w in part.words]
        pieces.append(part.samples)
        offset += len(part.samples)
        if i < len(gaps_s):
            gap = np.zeros(int(round(max(gaps_s[i], 0.0) * rate)), np.float32)
            pieces.append(gap)
            offset += len(gap)
    return Utterance(np.concatenate(pieces), rate, words, " ".join(p.text for p in parts), parts[0].voice)
