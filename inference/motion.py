"""Canonical motion: what every engine produces and what the retargeter consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .skeleton import NUM_JOINTS, REST_PELVIS_HEIGHT, forward_kinematics


@dataclass
class CanonicalMotion:
    """Local joint rotations relative to the T-pose rest, plus the pelvis position.

    rotations: (T, 52, 4) unit quaternions (w, x, y, z), SMPL-X joint order.
    root: (T, 3) pelvis position in metres, canonical frame (+Y up, faces +Z).
    """

    rotations: np.ndarray
    root: np.ndarray
    fps: float = 30.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root = np.asarray(self.root, dtype=np.float64)
        if self.rotations.ndim != 3 or self.rotations.shape[1:] != (NUM_JOINTS, 4):
            raise ValueError(f"rotations must be (T, {NUM_JOINTS}, 4), got {self.rotations.shape}")
        if self.root.shape != (self.rotations.shape[0], 3):
            raise ValueError(f"root must be (T, 3), got {self.root.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def rest(cls, num_frames: int, fps: float = 30.0) -> CanonicalMotion:
        rot = np.zeros((num_frames, NUM_JOINTS, 4))
        rot[..., 0] = 1.0
        root = np.tile([0.0, REST_PELVIS_HEIGHT, 0.0], (num_frames, 1))
        return cls(rot, root, fps)

    def global_rotations_and_positions(self) -> tuple[np.ndarray, np.ndarray]:
        return forward_kinematics(self.rotations, self.root)


def resample_motion(motion: CanonicalMotion, fps: float) -> CanonicalMotion:
    """The same motion sampled at another frame rate (slerp for rotations, linear for the root),
    so keys land on whole frames of the user's scene."""
    from .rotations import quat_slerp

    if abs(fps - motion.fps) < 1e-9:
        return motion
    if fps <= 0:
        raise ValueError("fps must be positive")
    n_out = max(1, int(round(motion.duration * fps)))
    t = np.arange(n_out) * (motion.fps / fps)
    lo = np.clip(np.floor(t).astype(int), 0, motion.num_frames - 1)
    hi = np.clip(lo + 1, 0, motion.num_frames - 1)
    w = (t - lo)[:, None]
    rot = quat_slerp(motion.rotations[lo], motion.rotations[hi], np.broadcast_to(w, (n_out, motion.rotations.shape[1])))
    root = motion.root[lo] * (1 - w) + motion.root[hi] * w
    return CanonicalMotion(rot, root, fps, dict(motion.meta))
