"""The gesture-transcript joint embedding's modules (GestureDiffuCLIP's semantic embedding): the transcript
tokenizer, transcript and gesture encoders. Training, data and evaluation: training/models/text_gesture.py and
docs/EMBEDDING.md. The diffusion generator's semantic layers read the transcript encoder's features."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

FPS = 30.0
PAD, UNK, SIL = "<pad>", "<unk>", "<sil>"
SPECIALS = (PAD, UNK, SIL)
PAD_ID, UNK_ID, SIL_ID = 0, 1, 2

UPPER_BODY_JOINTS: tuple[str, ...] = (
    "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
FINGER_JOINTS: tuple[str, ...] = tuple(
    f"{side}_{finger}1" for side in ("left", "right") for finger in ("index", "middle", "pinky", "ring", "thumb")
)
GESTURE_JOINTS: tuple[str, ...] = UPPER_BODY_JOINTS + FINGER_JOINTS
GESTURE_DIM = 6 * len(GESTURE_JOINTS)



# ----------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TextGestureModelConfig:
    """Architecture (what a checkpoint needs to rebuild the model, vocabulary included)."""

    vocab: list[str] = field(default_factory=lambda: list(SPECIALS))
    window_frames: int = 120
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ff: int = 256
    dropout: float = 0.1
    embed_dim: int = 128
    init_temperature: float = 0.07
    gesture_joints: list[str] = field(default_factory=lambda: list(GESTURE_JOINTS))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextGestureModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown text-gesture model settings: {sorted(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------------------------------
# Transcript tokens


def normalise_word(text: str) -> str:
    t = text.lower().replace("\u2019", "'")
    return re.sub(r"[^a-z']", "", t).strip("'")


@lru_cache(maxsize=65536)
def word_lemma(text: str) -> str:
    """Lower-case lemma of a word (lemminflect's first lemma; the word itself when it has none)."""
    from ..style import lemma_forms

    w = normalise_word(text)
    if not w:
        return ""
    forms = lemma_forms(w)
    return forms[1] if len(forms) > 1 else forms[0]


@dataclass
class Vocabulary:
    tokens: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.tokens[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, word: str) -> int:
        lemma = word_lemma(word)
        if not lemma:
            return SIL_ID
        return self.index.get(lemma, UNK_ID)

    @classmethod
    def build(cls, transcripts: Iterable[Sequence[str]], min_count: int = 2, max_size: int = 4000) -> Vocabulary:
        counts: Counter[str] = Counter()
        for words in transcripts:
            counts.update(x for x in (word_lemma(w) for w in words) if x)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept[: max(0, max_size - len(SPECIALS))])


def frame_tokens(words: Sequence[tuple[str, float, float]], n_frames: int, vocab: Vocabulary,
                 fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame token ids (the word spoken at each frame, <sil> elsewhere) and word-onset flags."""
    tokens = np.full(n_frames, SIL_ID, dtype=np.int32)
    onsets = np.zeros(n_frames, dtype=np.int8)
    for text, start, end in words:
        tid = vocab.id(text)
        if tid == SIL_ID:
            continue
        a = int(round(float(start) * fps))
        b = max(a + 1, int(round(float(end) * fps)))
        if a >= n_frames or b <= 0:
            continue
        tokens[max(a, 0):min(b, n_frames)] = tid
        if a >= 0:
            onsets[a] = 1
    return tokens, onsets


# ----------------------------------------------------------------------------------------------------
# Model


class _TemporalEncoder(nn.Module):
    """(B, W, d) frame features -> (B, embed_dim): conv downsampling 4x, transformer, mean+max pooling."""

    def __init__(self, cfg: TextGestureModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.conv = nn.Sequential(
            nn.Conv1d(d, d, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(d, d, 5, stride=2, padding=2), nn.GELU(),
        )
        steps = (cfg.window_frames + 3) // 4
        self.pos = nn.Parameter(torch.randn(1, steps, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.proj = nn.Linear(2 * d, cfg.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h = h + self.pos[:, : h.shape[1]]
        h = self.norm(self.transformer(h))
        return self.proj(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1))


class TranscriptEncoder(nn.Module):
    """Per-frame token ids (B, W) and onset flags (B, W) -> (B, embed_dim), not normalised."""

    def __init__(self, cfg: TextGestureModelConfig) -> None:
        super().__init__()
        self.token = nn.Embedding(len(cfg.vocab), cfg.d_model, padding_idx=PAD_ID)
        self.onset = nn.Embedding(2, cfg.d_model)
        self.encoder = _TemporalEncoder(cfg)

    def forward(self, tokens: Tensor, onsets: Tensor) -> Tensor:
        return self.encoder(self.token(tokens) + self.onset(onsets.long()))


class GestureEncoder(nn.Module):
    """6D rotations (B, W, 6 * joints) -> (B, embed_dim), not normalised; normalises its input (and the
    frame-to-frame velocities it adds) with train-split statistics kept as buffers."""

    mean: Tensor
    std: Tensor
    vel_std: Tensor

    def __init__(self, cfg: TextGestureModelConfig) -> None:
        super().__init__()
        in_dim = 6 * len(cfg.gesture_joints)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.register_buffer("vel_std", torch.ones(in_dim))
        self.inp = nn.Linear(2 * in_dim, cfg.d_model)
        self.encoder = _TemporalEncoder(cfg)

    def forward(self, gesture: Tensor) -> Tensor:
        vel = torch.diff(gesture, dim=1, prepend=gesture[:, :1])
        x = torch.cat([(gesture - self.mean) / self.std, vel / self.vel_std], dim=-1)
        return self.encoder(self.inp(x))


class TextGestureModel(nn.Module):
    """Transcript and gesture encoders into one L2-normalised space, with a learned logit scale.

    ``model(tokens=..., onsets=..., gesture=..., tokens_neg=..., onsets_neg=..., gesture_neg=...)`` returns
    the normalised embeddings of whatever it was given (keys "transcript", "gesture", "transcript_neg",
    "gesture_neg") and "scale"; ``embed_transcript`` / ``embed_gesture`` embed one side."""

    def __init__(self, config: TextGestureModelConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab = Vocabulary(list(config.vocab))
        self.transcript = TranscriptEncoder(config)
        self.gesture = GestureEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> TextGestureModel:
        return cls(TextGestureModelConfig.from_dict(d))

    def embed_transcript(self, tokens: Tensor, onsets: Tensor) -> Tensor:
        return F.normalize(self.transcript(tokens, onsets), dim=-1)

    def embed_gesture(self, gesture: Tensor) -> Tensor:
        return F.normalize(self.gesture(gesture), dim=-1)

    def scale(self) -> Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def forward(self, tokens: Tensor | None = None, onsets: Tensor | None = None, gesture: Tensor | None = None,
                tokens_neg: Tensor | None = None, onsets_neg: Tensor | None = None,
                gesture_neg: Tensor | None = None) -> dict[str, Tensor]:
        out = {"scale": self.scale()}
        if tokens is not None and onsets is not None:
            out["transcript"] = self.embed_transcript(tokens, onsets)
        if tokens_neg is not None and onsets_neg is not None:
            out["transcript_neg"] = self.embed_transcript(tokens_neg, onsets_neg)
        if gesture is not None:
            out["gesture"] = self.embed_gesture(gesture)
        if gesture_neg is not None:
            out["gesture_neg"] = self.embed_gesture(gesture_neg)
        return out
