"""Transcripts in: timed (SRT, WebVTT, Praat TextGrid) or plain text (forced-aligned to the audio), out as
word timings relative to the start of the audio window.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .audio import Audio

TIMED_SUFFIXES = {".srt": "srt", ".vtt": "vtt", ".textgrid": "textgrid"}
# TextGrid labels that mark silence or noise rather than words (MFA, Montreal, Praat, pocketsphinx).
SILENCE_LABELS = {"", "<sil>", "sil", "sp", "spn", "<s>", "</s>", "<unk>", "#", "{sl}", "{lg}", "[noise]"}
WORD_TIER_NAMES = ("words", "word", "transcript", "transcription", "text", "wörter", "mots", "palabras")


@dataclass(frozen=True)
class Word:
    text: str  # as written, stripped of surrounding punctuation
    start: float  # seconds from the start of the audio window
    end: float


def load_transcript(path: str | Path, audio: Audio | None = None, *, offset_s: float = 0.0) -> list[Word]:
    """Word timings from a transcript file, relative to the audio window that starts at ``offset_s``.

    .srt/.vtt/.TextGrid are timed; anything else that is text is forced-aligned against ``audio``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Transcript file not found: {path}. Check the path, or leave it empty for prosody-only.")
    if path.is_dir():
        raise InputError(f"Transcript path is a folder, not a file: {path}. Pick a .txt, .srt, .vtt or .TextGrid.")
    text = read_text_file(path)
    kind = TIMED_SUFFIXES.get(path.suffix.lower()) or _sniff_kind(text)

    if kind == "plain":
        if not text_tokens(text):
            raise InputError(f"Transcript {path} is empty (no words). Add the spoken text, or leave it unset.")
        if audio is None:
            raise InputError(
                f"Transcript {path} is plain text, which needs the audio to align it to. "
                "Select the audio too, or use a timed transcript (SRT, VTT or TextGrid)."
            )
        from .align import align_text

        return align_text(text, audio)

    if kind == "srt":
        words = parse_srt(text, source=str(path))
    elif kind == "vtt":
        words = _parse_vtt_text(text, str(path))
    else:
        words = _parse_textgrid_text(text, path)
    if not words:
        raise InputError(f"Transcript {path} is empty (no words in any cue). Add the spoken text, or leave it unset.")
    return _window(words, offset_s, audio.duration if audio is not None else None, str(path))


def read_text_file(path: Path) -> str:
    """Decode a text file: UTF-16 (with BOM, as Praat writes), UTF-8 (with or without BOM), then Latin-1."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Could not read transcript {path}: {exc.strerror or exc}.") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" in raw[:4096]:
        raise InputError(f"Transcript {path} is not a text file (it contains binary data). Pick a text transcript.")
    for encoding in ("utf-8", "utf-8-sig", "latin-1"):
        try:
            return raw.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError:
            continue
    raise InputError(f"Transcript {path} has an unreadable text encoding; save it as UTF-8.")  # pragma: no cover


def _sniff_kind(text: str) -> str:
    """A timed transcript saved with another suffix (e.g. .txt) is still read as timed."""
    head = text.lstrip()[:2000]
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith('File type = "ooTextFile"'):
        return "textgrid"
    if re.search(r"^\s*\d+\s*\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->", head, re.MULTILINE):
        return "srt"
    return "plain"


def _window(words: list[Word], offset_s: float, duration: float | None, source: str) -> list[Word]:
    """Shift into the audio window and keep the words that overlap it (clipped to its span)."""
    end_limit = duration if duration is not None else float("inf")
    out = []
    for w in words:
        start, end = w.start - offset_s, w.end - offset_s
        if end <= 0.0 or start >= end_limit:
            continue
        out.append(Word(w.text, max(0.0, start), min(end, end_limit)))
    if not out:
        span = f"{offset_s:.2f}-{offset_s + end_limit:.2f} s" if duration is not None else f"after {offset_s:.2f} s"
        raise InputError(
            f"No words of transcript {source} ({words[0].start:.2f}-{words[-1].end:.2f} s) fall inside the audio "
            f"window ({span}). Check that the transcript belongs to this audio and the strip's trim/offset."
        )
    return out


# --- SRT --------------------------------------------------------------------------------------------------


def parse_srt(text: str, *, source: str = "SRT transcript") -> list[Word]:
    import srt

    try:
        subs = list(srt.parse(text, ignore_errors=False))
    except (srt.SRTParseError, ValueError, TypeError) as exc:
        raise InputError(f"{source} is not valid SRT: {exc}. Fix the file or export it again.") from exc
    if not subs and text.strip():
        raise InputError(f"{source} is not valid SRT: no subtitle blocks found. Fix the file or export it again.")
    return words_from_segments((_clean_cue(s.content), _secs(s.start), _secs(s.end)) for s in subs)


def _secs(delta: datetime.timedelta) -> float:
    return delta.total_seconds()


_TAG = re.compile(r"<[^>]*>|\{[^}]*\}")  # HTML-ish tags and ASS override blocks like {\an8}
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫]")  # [music], (laughs): described, not spoken
_SPEAKER = re.compile(r"^\s*(?:-\s*)?(?:[A-Z][A-Z0-9 .'-]{0,30}:\s+|>>\s*)", re.MULTILINE)  # "JOHN: ", ">> "


def _clean_cue(text: str) -> str:
    text = _TAG.sub(" ", text)
    text = _SOUND.sub(" ", text)
    text = _SPEAKER.sub(" ", text)
    return text


# --- WebVTT -----------------------------------------------------------------------------------------------


def parse_vtt(path: str | Path) -> list[Word]:
    path = Path(path)
    return _parse_vtt_text(read_text_file(path), str(path))


def _parse_vtt_text(text: str, source: str) -> list[Word]:
    import webvtt
    from webvtt.errors import MalformedFileError

    try:
        captions = webvtt.from_string(text).captions
    except (MalformedFileError, ValueError) as exc:
        raise InputError(f"{source} is not valid WebVTT: {exc}. Fix the file or export it again.") from exc
    # start_in_seconds drops the milliseconds in webvtt-py 0.6; use the millisecond timestamps.
    return words_from_segments(
        (_clean_cue(c.text), c.start_time.in_milliseconds() / 1000.0, c.end_time.in_milliseconds() / 1000.0)
        for c in captions
    )


# --- Praat TextGrid ---------------------------------------------------------------------------------------


def parse_textgrid(path: str | Path) -> list[Word]:
    path = Path(path)
    return _parse_textgrid_text(read_text_file(path), path)


def _parse_textgrid_text(text: str, path: Path) -> list[Word]:
    import tempfile

    from praatio import textgrid

    # praatio only opens files as UTF-16 or UTF-8; hand it the already-decoded text as UTF-8.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "transcript.TextGrid"
        copy.write_text(text, encoding="utf-8")
        try:
            tg = textgrid.openTextgrid(str(copy), includeEmptyIntervals=False, duplicateNamesMode="rename")
        except Exception as exc:  # praatio raises assorted errors (IndexError, ValueError, its own) on bad files
            reason = str(exc) or type(exc).__name__
            message = f"{path} is not a valid Praat TextGrid: {reason}. Fix the file or export it again."
            raise InputError(message) from exc

    tiers = [tg.getTier(name) for name in tg.tierNames]
    interval_tiers = [t for t in tiers if isinstance(t, textgrid.IntervalTier)]
    if not interval_tiers:
        raise InputError(f"TextGrid {path} has no interval tier with words. Add a 'words' interval tier.")
    by_name = {t.name.strip().lower(): t for t in interval_tiers}
    tier = next((by_name[n] for n in WORD_TIER_NAMES if n in by_name), interval_tiers[0])
    segments = [
        (e.label, float(e.start), float(e.end)) for e in tier.entries if e.label.strip().lower() not in SILENCE_LABELS
    ]
    return words_from_segments(segments)


# --- shared -----------------------------------------------------------------------------------------------


def _strip_punct(token: str) -> str:
    """Strip surrounding punctuation and symbols, keeping inner apostrophes and hyphens ("don't", "well-known")."""
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start])[0] in "PSZC":
        start += 1
    while end > start and unicodedata.category(token[end - 1])[0] in "PSZC":
        end -= 1
    return token[start:end]


_VOWELS = re.compile(r"[aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüý]+", re.IGNORECASE)


def _syllables(word: str) -> float:
    """Rough spoken length: vowel groups for Latin script, characters for scripts without (CJK, ...)."""
    digits = sum(ch.isdigit() for ch in word)
    groups = len(_VOWELS.findall(word))
    if groups == 0 and not any(ch.isascii() for ch in word if ch.isalpha()):
        groups = sum(ch.isalpha() for ch in word)  # one syllable-ish per kana/hanzi/hangul character
    return float(max(1, groups + digits))


def words_from_segments(segments: Iterable[tuple[str, float, float]]) -> list[Word]:
    """Split timed segments (cues) into words, spreading each cue's span over its words by syllable count."""
    words: list[Word] = []
    for text, start, end in segments:
        start, end = float(start), float(end)
        if end < start:
            start, end = end, start
        tokens = [t for t in (_strip_punct(tok) for tok in text.split()) if t]
        if not tokens:
            continue
        weights = [_syllables(t) for t in tokens]
        total, acc = sum(weights), 0.0
        for token, weight in zip(tokens, weights, strict=True):
            a = start + (end - start) * acc / total
            acc += weight
            words.append(Word(token, a, start + (end - start) * acc / total))
    return _fix_order(words)


def _fix_order(words: list[Word]) -> list[Word]:
    """Sort by start and remove overlaps (overlapping cues): a word ends no later than the next one starts."""
    words = sorted(words, key=lambda w: (w.start, w.end))
    out: list[Word] = []
    for i, w in enumerate(words):
        end = w.end
        if i + 1 < len(words) and words[i + 1].start < end:
            end = max(w.start, words[i + 1].start)
        out.append(Word(w.text, w.start, end))
    return out


_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def text_tokens(text: str) -> list[str]:
    """Normalised lower-case words for lexicon lookup; keeps inner apostrophes ("don't"), splits on hyphens."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return [m.group(0) for m in _TOKEN.finditer(text.lower())]
