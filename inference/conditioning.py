"""Frame-aligned conditions for the diffusion generator, shared by training data preparation and inference
(so both compute exactly the same thing): audio features and transcript tokens per motion frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .audio import Audio, audio_features

CONDITIONING_VERSION = 1  # bump when a computation below changes (prepared training data becomes stale)
AUDIO_DIM = 64 + 4  # log-mel, onset, energy, log pitch, voiced


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad the first axis to n frames."""
    if len(x) >= n:
        return x[:n]
    if not len(x):
        return np.zeros((n, *x.shape[1:]), x.dtype)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def audio_frame_features(audio: Audio, n_frames: int, fps: float = 30.0) -> np.ndarray:
    """(n_frames, AUDIO_DIM) float32: log-mel (64), onset strength, energy, log2(f0 / 200 Hz) where voiced, voiced."""
    f = audio_features(audio, fps)
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
