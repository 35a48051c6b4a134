"""Turning basis quaternions into the F-curve channels a pose bone's rotation mode reads (no bpy)."""

from __future__ import annotations

import numpy as np

from ..inference.rotations import (
    EULER_ORDERS,
    euler_make_continuous,
    matrix_to_euler,
    quat_make_continuous,
    quat_to_axis_angle,
    quat_to_matrix,
)


def rotation_channels(quats: np.ndarray, rotation_mode: str) -> tuple[str, np.ndarray]:
    """(data-path property, values (T, n)) for a pose bone with this rotation_mode."""
    if rotation_mode == "QUATERNION":
        return "rotation_quaternion", quat_make_continuous(quats)
    if rotation_mode in EULER_ORDERS:
        euler = matrix_to_euler(quat_to_matrix(quats), rotation_mode)
        return "rotation_euler", euler_make_continuous(euler, rotation_mode)
    if rotation_mode == "AXIS_ANGLE":
        aa = quat_to_axis_angle(quat_make_continuous(quats))
        angle = np.linalg.norm(aa, axis=-1, keepdims=True)
        axis = np.where(angle > 1e-9, aa / np.maximum(angle, 1e-12), np.array([0.0, 1.0, 0.0]))
        return "rotation_axis_angle", np.concatenate([angle, axis], axis=-1)
    raise ValueError(f"unsupported rotation mode {rotation_mode!r}")
