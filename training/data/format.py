"""The one training format every reader produces.

A `Sample` is one take: canonical motion (SMPL-X 52 joints, local quaternions relative to the canonical T-pose,
30 fps, see `inference/skeleton.py`), its speech (float32 mono 16 kHz) and word timings. Readers of data sets that
come without a split use `split_of`, a stable hash of an id, so a take keeps its split across machines and runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...inference.skeleton import NUM_JOINTS
from ...inference.transcript import Word

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
SAMPLE_RATE = 16000


@dataclass
class Sample:
    rotations: np.ndarray  # (T, 52, 4) float32 local quats (w, x, y, z) relative to the canonical T-pose
    root: np.ndarray  # (T, 3) float32 pelvis position, metres, canonical frame (+Y up, faces +Z)
    audio: np.ndarray  # float32 mono 16 kHz
    words: list[Word]  # seconds from the clip start
    source: str  # file or clip id
    speaker: str = ""
    style_id: int = -1
    part_style_ids: tuple[int, ...] = ()
    emotion: str = ""
    fps: float = 30.0
    meta: dict[str, Any] = field(default_factory=dict)  # reader notes: mirrored, style name, header fixes, ...

    def __post_init__(self) -> None:
        self.rotations = np.asarray(self.rotations, dtype=np.float32)
        self.root = np.asarray(self.root, dtype=np.float32)
        self.audio = np.asarray(self.audio, dtype=np.float32).reshape(-1)
        if self.rotations.ndim != 3 or self.rotations.shape[1:] != (NUM_JOINTS, 4):
            raise ValueError(f"{self.source}: rotations must be (T, {NUM_JOINTS}, 4), got {self.rotations.shape}")
        if self.root.shape != (self.rotations.shape[0], 3):
            raise ValueError(f"{self.source}: root must be ({self.rotations.shape[0]}, 3), got {self.root.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def split_of(sample_id: str) -> str:
    """"train", "val" or "test" for a data set without an official split: the first 8 bytes of the SHA-256 of the
    id, as a fraction of 2**64, against the cumulative SPLIT_FRACTIONS (90 / 5 / 5 %). Stable across runs, machines
    and Python versions (unlike `hash()`). Pass an id that groups what must not cross splits (a take and its
    mirrored copy: the readers strip the mirror marker first)."""
    h = int.from_bytes(hashlib.sha256(sample_id.strip().encode("utf-8")).digest()[:8], "little") / 2**64
    edges = np.cumsum(SPLIT_FRACTIONS)
    return SPLITS[min(int(np.searchsorted(edges, h, side="right")), len(SPLITS) - 1)]


def clip_words(words: list[Word], duration: float) -> list[Word]:
    """Words inside [0, duration): later words dropped, a word running past the end cut there."""
    return [Word(w.text, w.start, min(w.end, duration)) for w in words if w.start < duration]
