"""Per-sample model inputs, cached on disk: audio features and frame-aligned transcript tokens.

Audio features come from `inference.audio.audio_features`, the function the add-on itself runs, so training and
inference share one definition (log-mel (T, 64), onset strength, energy, pitch, voicing at the motion's frame rate).

Transcript tokens: a `Vocabulary` built from the train split's words (lower-cased, lemmatised with lemminflect when
it is installed; `<pad>` = 0, `<unk>` = 1, `<sil>` = 2), per frame the id of the word being spoken (`<sil>`
between words) and the word list as (token id, start frame, end frame) rows, end exclusive. Frame t covers time
t / fps; a word covers the frames whose time lies in [start, end), at least one.

The cache lives in `.cache/features/<key>/features.npz`; the key hashes the sample's id and content (audio and
words), the settings, the vocabulary and CODE_VERSION, so changing any of them computes afresh (old entries stay
until the folder is deleted). Files are plain npz (no pickle), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ...inference.audio import Audio, audio_features
from ...inference.transcript import text_tokens
from .format import SAMPLE_RATE, Sample

CODE_VERSION = 1  # bump when the computation below changes: every cached entry becomes stale
PAD, UNK, SIL = "<pad>", "<unk>", "<sil>"
SPECIALS = (PAD, UNK, SIL)
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "features"
_LEMMA_PREFERENCE = ("VERB", "AUX", "NOUN", "ADJ", "ADV", "PROPN")


def normalise_word(text: str, lemmatize: bool = True) -> str:
    """'Running,' -> 'run' (lower case, punctuation stripped, lemma when lemminflect is available)."""
    parts = text_tokens(text)
    word = "-".join(parts)
    if not word or not lemmatize:
        return word
    try:
        from lemminflect import getAllLemmas
    except ImportError:
        return word
    lemmas = getAllLemmas(word)
    for pos in _LEMMA_PREFERENCE:
        if pos in lemmas:
            return str(lemmas[pos][0])
    return str(next(iter(lemmas.values()))[0]) if lemmas else word


@dataclass
class Vocabulary:
    tokens: list[str]
    lemmatize: bool = True
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, word: str) -> int:
        return self.index.get(normalise_word(word, self.lemmatize), self.index[UNK])

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.tokens, self.lemmatize]).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.tokens, "lemmatize": self.lemmatize}, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        data = json.loads(Path(path).read_text())
        return cls(list(data["tokens"]), bool(data["lemmatize"]))


def build_vocabulary(samples: Iterable[Sample], *, min_count: int = 1, lemmatize: bool = True) -> Vocabulary:
    """From the train split's samples: words seen at least `min_count` times, most frequent first."""
    counts = Counter(normalise_word(w.text, lemmatize) for s in samples for w in s.words)
    counts.pop("", None)
    kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS), key=lambda w: (-counts[w], w))
    return Vocabulary([*SPECIALS, *kept], lemmatize)


@dataclass(frozen=True)
class FeatureSettings:
    fps: float = 30.0  # feature frames per second (the motion's rate)


@dataclass
class Features:
    log_mel: np.ndarray  # (T, 64) float32
    onset: np.ndarray  # (T,) float32 in [0, 1]
    energy: np.ndarray  # (T,) float32 in [0, 1]
    pitch_hz: np.ndarray  # (T,) float32, 0 where unvoiced
    voiced: np.ndarray  # (T,) bool
    word_ids: np.ndarray  # (T,) int32 token of the word spoken at each frame, <sil> between words
    words: np.ndarray  # (N, 3) int32 rows of (token id, start frame, end frame exclusive)

    @property
    def num_frames(self) -> int:
        return int(self.word_ids.shape[0])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{k.name: getattr(self, k.name) for k in fields(self)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Features:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{k.name: data[k.name] for k in fields(cls)})


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad the first axis to n frames."""
    if len(x) >= n:
        return x[:n]
    pad = [(0, n - len(x))] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad, mode="edge") if len(x) else np.zeros((n, *x.shape[1:]), x.dtype)


def compute_features(sample: Sample, settings: FeatureSettings, vocab: Vocabulary) -> Features:
    fps = settings.fps
    n = max(1, int(round(sample.duration * fps)))
    audio = audio_features(Audio(sample.audio, SAMPLE_RATE, sample.source), fps)
    word_ids = np.full(n, vocab.index[SIL], dtype=np.int32)
    rows = []
    for w in sample.words:
        start = int(np.ceil(w.start * fps - 1e-6))
        end = max(start + 1, int(np.ceil(w.end * fps - 1e-6)))
        start, end = max(0, start), min(n, end)
        if start >= n or end <= start:
            continue
        token = vocab.encode(w.text)
        word_ids[start:end] = token
        rows.append((token, start, end))
    return Features(
        log_mel=_fit(audio.log_mel, n).astype(np.float32), onset=_fit(audio.onset, n).astype(np.float32),
        energy=_fit(audio.energy, n).astype(np.float32), pitch_hz=_fit(audio.pitch_hz, n).astype(np.float32),
        voiced=_fit(audio.voiced, n).astype(bool), word_ids=word_ids,
        words=np.array(rows, dtype=np.int32).reshape(-1, 3),
    )


def content_hash(sample: Sample) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(sample.audio, dtype=np.float32).tobytes())
    h.update(json.dumps([[w.text, round(w.start, 6), round(w.end, 6)] for w in sample.words]).encode())
    h.update(f"{sample.num_frames}/{sample.fps}".encode())
    return h.hexdigest()


class FeatureCache:
    """`get(sample)` computes a sample's Features once and reads them from disk afterwards."""

    def __init__(self, vocab: Vocabulary, settings: FeatureSettings | None = None,
                 root: str | Path = DEFAULT_CACHE) -> None:
        self.vocab = vocab
        self.settings = settings or FeatureSettings()
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def key(self, sample: Sample) -> str:
        desc = {"source": sample.source, "content": content_hash(sample), "settings": asdict(self.settings),
                "vocab": self.vocab.digest, "code": CODE_VERSION}
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:32]

    def path(self, sample: Sample) -> Path:
        return self.root / self.key(sample) / "features.npz"

    def get(self, sample: Sample) -> Features:
        path = self.path(sample)
        if path.exists():
            try:
                feats = Features.load(path)
                self.hits += 1
                return feats
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry: compute it again
        feats = compute_features(sample, self.settings, self.vocab)
        feats.save(path)
        self.misses += 1
        return feats
