"""Frame-aligned conditions for the diffusion generator, shared by training data preparation and inference
(so both compute exactly the same thing): audio features and transcript tokens per motion frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .audio import Audio, AudioFeatures, audio_features

CONDITIONING_VERSION = 1  # bump when a computation below changes (prepared training data becomes stale)
AUDIO_DIM = 64 + 4  # log-mel, onset, energy, log pitch, voiced


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad the first axis to n frames."""
    if len(x) >= n:
        return x[:n]
    if not len(x):
        return np.zeros((n, *x.shape[1:]), x.dtype)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def audio_frame_features(audio: Audio | AudioFeatures, n_frames: int, fps: float = 30.0) -> np.ndarray:
    """(n_frames, AUDIO_DIM) float32: log-mel (64), onset strength, energy, log2(f0 / 200 Hz) where voiced, voiced.
    Takes the audio, or its features when they were computed already (at ``fps``)."""
    f = audio if isinstance(audio, AudioFeatures) else audio_features(audio, fps)
    pitch = np.where(f.pitch_hz > 0, np.log2(np.maximum(f.pitch_hz, 1.0) / 200.0), 0.0)
    feats = np.concatenate(
        [f.log_mel, f.onset[:, None], f.energy[:, None], pitch[:, None], f.voiced[:, None].astype(np.float64)],
        axis=1,
    ).astype(np.float32)
    return _fit(feats, n_frames)


def frame_tokens_for(words: Sequence[tuple[str, float, float]], n_frames: int, vocab: object,
                     fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame token ids and word-onset flags in the gesture-transcript embedding's vocabulary."""
    from .nets.text_gesture import frame_tokens

    return frame_tokens(words, n_frames, vocab, fps)  # type: ignore[arg-type]


TRANSCRIPT_WINDOW = 120  # frames: the gesture-transcript embedding's window (4 s)
TRANSCRIPT_STRIDE = 8  # frames between embedded windows; latent frames in between are interpolated


def transcript_features(model: object, tokens: np.ndarray, onsets: np.ndarray, n_latent: int,
                        frames_per_latent: int = 4, batch: int = 256) -> np.ndarray:
    """The frame-aligned gesture-transcript embedding: (n_latent, embed_dim) float32 unit vectors, the embedding
    of the 4-second transcript window centred on each latent frame (``model`` is a TextGestureModel)."""
    import torch

    from .nets.text_gesture import SIL_ID

    tokens = np.asarray(tokens, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.int64)
    half = TRANSCRIPT_WINDOW // 2
    pad_tok = np.concatenate([np.full(half, SIL_ID), tokens, np.full(half + TRANSCRIPT_STRIDE, SIL_ID)])
    pad_ons = np.concatenate([np.zeros(half, np.int64), onsets, np.zeros(half + TRANSCRIPT_STRIDE, np.int64)])
    n_frames = n_latent * frames_per_latent
    centres = np.arange(0, n_frames + TRANSCRIPT_STRIDE, TRANSCRIPT_STRIDE)  # window centres (frames)
    idx = centres[:, None] + np.arange(TRANSCRIPT_WINDOW)[None]  # padded coordinates: centre - half + k
    idx = np.minimum(idx, len(pad_tok) - 1)
    out = []
    with torch.no_grad():
        for a in range(0, len(centres), batch):
            tok = torch.from_numpy(pad_tok[idx[a:a + batch]])
            ons = torch.from_numpy(pad_ons[idx[a:a + batch]])
            out.append(model.embed_transcript(tok, ons).numpy())  # type: ignore[attr-defined]
    emb = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
    latent_centres = np.arange(n_latent) * frames_per_latent + frames_per_latent / 2.0
    pos = latent_centres / TRANSCRIPT_STRIDE
    lo = np.clip(np.floor(pos).astype(int), 0, len(emb) - 1)
    hi = np.clip(lo + 1, 0, len(emb) - 1)
    w = (pos - lo)[:, None]
    mixed = (1 - w) * emb[lo] + w * emb[hi]
    return (mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-6)).astype(np.float32)
