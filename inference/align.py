"""Offline forced alignment of a plain-text transcript to speech, with pocketsphinx 5's en-us model.

English only (the acoustic model and dictionary are). Numbers are spelled out, and the few words missing
from the dictionary (names, coinages) get a rough letter-to-sound pronunciation so they still take time
in the alignment rather than being skipped.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from .audio import Audio
from .errors import InputError
from .transcript import Word, _strip_punct, text_tokens

ALIGN_RATE = 16000  # the en-us acoustic model's rate
FRAME_S = 0.01  # pocketsphinx reports segments in 10 ms frames
MIN_ENGLISH_COVERAGE = 0.6  # below this the text is treated as not English (real English text scores > 0.9)

NOT_ENGLISH_HELP = (
    "Plain-text alignment works for English only. For other languages use a timed transcript "
    "(SRT, VTT or TextGrid, which work in any language), or leave the transcript empty for prosody-only gestures."
)

# Common function words of other languages that are not English words (cmudict lists many as names).
FOREIGN_FUNCTION_WORDS = frozenset(
    # German
    "der das und ist nicht ein eine einen ich den dem des mit von zu auf für sich wir sie es auch aber oder wie "
    "wenn noch nur schon sehr bei nach aus dass "
    # French
    "le la les et est une des du je il elle nous vous ils pas ne que qui dans sur avec ce cette mais ou très sont "
    # Spanish, Italian, Portuguese, Dutch
    "el los las y es del una por para como pero muy está di che della sono gli os não uma com het een ik niet "
    "zijn wat".split()
)


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, str]:
    """pocketsphinx's en-us dictionary: word -> phones of its first pronunciation."""
    from pocketsphinx import get_model_path

    lexicon: dict[str, str] = {}
    with open(Path(get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            word, _, phones = line.strip().partition(" ")
            if word and "(" not in word:
                lexicon[word] = phones.strip()
    return lexicon


def english_coverage(text: str) -> float:
    """Fraction of the text's words that look English: in cmudict, and not another language's function word.

    Numbers are ignored (they are spelled out before alignment). Returns 0.0 for text with no words.
    """
    tokens = [t for t in text_tokens(text) if not any(ch.isdigit() for ch in t)]
    if not tokens:
        return 0.0
    lexicon = _cmudict()
    english = sum(1 for t in tokens if t in lexicon and t not in FOREIGN_FUNCTION_WORDS)
    return english / len(tokens)


def _latin_fraction(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    return sum("LATIN" in unicodedata.name(ch, "") for ch in letters) / len(letters)


# --- numbers ----------------------------------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split()
)
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_words(n: int) -> list[str]:
    """Cardinal number as English words (enough for transcripts: up to the billions)."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_words(head) + [name] + (number_words(rest) if rest else [])
    raise AssertionError("unreachable")


def _spell_number(token: str) -> list[str]:
    """'42' -> forty two, '1984' -> nineteen eighty four, '3.5' -> three point five, '2nd' -> second."""
    m = re.fullmatch(r"(\d+)(st|nd|rd|th)", token)
    if m:
        words = number_words(int(m.group(1)))
        last = words[-1]
        words[-1] = _ORDINAL.get(last, last[:-1] + "ieth" if last.endswith("y") else last + "th")
        return words
    m = re.fullmatch(r"(\d+)\.(\d+)", token)
    if m:
        return _spell_number(m.group(1)) + ["point"] + [_ONES[int(d)] for d in m.group(2)]
    if not token.isdigit():
        return []
    n = int(token)
    if len(token) == 4 and 1100 <= n <= 2099 and n % 100 and not 2000 <= n <= 2009:  # read as a year
        return number_words(n // 100) + (["oh"] if n % 100 < 10 else []) + number_words(n % 100)
    if (len(token) > 1 and token.startswith("0")) or len(token) > 12:  # codes, phone numbers: digit by digit
        return [_ONES[int(d)] for d in token]
    return number_words(n)


# --- letter-to-sound guess for out-of-vocabulary words ----------------------------------------------------

# Longest spellings first; "graph=PHONES" pairs separated by "|".
_GRAPHEMES = [
    tuple(pair.split("="))
    for pair in (
        "tion=SH AH N|ch=CH|sh=SH|th=TH|ph=F|ng=NG|ck=K|qu=K W|wh=W|ee=IY|ea=IY|oo=UW|ou=AW|ow=OW|ai=EY|ay=EY|"
        "oi=OY|oy=OY|au=AO|aw=AO|er=ER|ar=AA R|or=AO R|ir=ER|ur=ER|ie=IY|a=AE|b=B|c=K|d=D|e=EH|f=F|g=G|h=HH|"
        "i=IH|j=JH|k=K|l=L|m=M|n=N|o=AA|p=P|q=K|r=R|s=S|t=T|u=AH|v=V|w=W|x=K S|y=IY|z=Z"
    ).split("|")
]


def guess_phones(word: str) -> str:
    """A crude English letter-to-sound guess; good enough to give a name its duration in the alignment."""
    lexicon = _cmudict()
    if word.endswith("'s") and word[:-2] in lexicon:  # possessive of a known word
        return lexicon[word[:-2]] + " Z"
    letters = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
    letters = re.sub(r"[^a-z]", "", letters)
    letters = re.sub(r"([bcdfghjklmnpqrstvwxz])\1", r"\1", letters)  # doubled consonants sound once
    if len(letters) > 3 and letters.endswith("e") and letters[-2] not in "aeiouy":
        letters = letters[:-1]  # silent final e
    phones, i = [], 0
    while i < len(letters):
        for graph, ph in _GRAPHEMES:
            if letters.startswith(graph, i):
                if graph == "y" and i == 0:
                    ph = "Y"
                phones.append(ph)
                i += len(graph)
                break
    return " ".join(phones) or "AH"


# --- alignment --------------------------------------------------------------------------------------------


def _plan(text: str) -> list[tuple[str, list[str]]]:
    """Pair each written word with the dictionary tokens that say it ("42" -> forty two)."""
    plan = []
    for raw in text.split():
        written = _strip_punct(raw)
        if not written:
            continue
        spoken: list[str] = []
        normal = re.sub(r"(?<=\d),(?=\d{3})", "", written.lower())  # 1,000 -> 1000
        normal = normal.replace("%", " percent ").replace("&", " and ")
        for piece in re.findall(r"\d+(?:\.\d+)?(?:st|nd|rd|th)?|[^\d\s]+", normal):
            spoken += _spell_number(piece) if piece[0].isdigit() else text_tokens(piece)
        if spoken:
            plan.append((written, spoken))
    return plan


def _check_english(text: str) -> None:
    if _latin_fraction(text) < 0.5:
        raise InputError(f"The transcript is not in Latin script, so it does not look like English. {NOT_ENGLISH_HELP}")
    coverage = english_coverage(text)
    if coverage < MIN_ENGLISH_COVERAGE:
        raise InputError(
            f"The transcript does not look like English (only {coverage:.0%} of its words are English words). "
            f"{NOT_ENGLISH_HELP}"
        )


def _decoder() -> Any:
    from pocketsphinx import Decoder

    # No language model: alignment only needs the acoustic model and dictionary (and loads 3x faster).
    # bestpath=False: the bestpath pass puts a fake </s> at the end and swallows the last word
    # (pocketsphinx PR #354; its own command line disables it for alignment too).
    return Decoder(samprate=ALIGN_RATE, lm=None, bestpath=False, loglevel="FATAL")


def _align_span(decoder: Any, tokens: list[str], pcm: np.ndarray) -> list[tuple[float, float]] | None:
    """Align tokens to int16 audio; (start, end) per token in seconds, or None when the search fails."""
    try:
        decoder.set_align_text(" ".join(tokens))
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
    except RuntimeError:
        return None
    segs = decoder.seg()
    if segs is None:
        return None
    words = [s for s in segs if not s.word.startswith(("<", "[", "(NULL"))]
    if len(words) != len(tokens):
        return None
    return [(s.start_frame * FRAME_S, (s.end_frame + 1) * FRAME_S) for s in words]


def align_text(text: str, audio: Audio) -> list[Word]:
    """Word times (seconds from the audio's start) for English ``text`` spoken in ``audio``."""
    source = audio.source or "the audio"
    plan = _plan(text)
    if not plan:
        raise InputError("The transcript is empty (no words). Add the spoken text, or leave it unset.")
    _check_english(text)

    decoder = _decoder()
    lexicon = _cmudict()
    tokens = [t for _, spoken in plan for t in spoken]
    oov = [t for t in dict.fromkeys(tokens) if t not in lexicon]
    for k, token in enumerate(oov):
        decoder.add_word(token, guess_phones(token), update=k == len(oov) - 1)  # one update at the end

    samples = audio.samples
    if audio.sample_rate != ALIGN_RATE:
        import soxr

        samples = soxr.resample(samples, audio.sample_rate, ALIGN_RATE)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)

    # One utterance for the whole clip. Search time grows faster than linearly (10 s: 0.25 s, 60 s: 0.8 s,
    # 7 min: 12 s on one core), but windowed alignment misplaced words here: pocketsphinx's alignment
    # stretches a window's last words over speech that belongs to the next window rather than call it silence.
    times = _align_span(decoder, tokens, pcm)
    if times is None:
        raise InputError(
            f"Could not align the transcript to {source}: the words do not seem to match the speech. "
            "Check that the transcript is for this audio (and the strip's trim), "
            "or use a timed transcript (SRT, VTT or TextGrid)."
        )

    words, i = [], 0
    for written, spoken in plan:
        start, end = times[i][0], times[i + len(spoken) - 1][1]
        words.append(Word(written, round(start, 3), round(max(end, start), 3)))
        i += len(spoken)
    return words
