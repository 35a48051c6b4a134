"""BVH export of canonical motion (for inspection in other tools and for debugging).

Hierarchy: the canonical skeleton, T-pose offsets, End Sites at the leaf tips. Every joint has three
rotation channels "Zrotation Xrotation Yrotation" (the rotation is R = Rz @ Rx @ Ry, angles in degrees),
the root also "Xposition Yposition Zposition" first. Units are metres times ``scale`` (centimetres by
default). The axes are the canonical ones: +Y up, the character faces +Z.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .motion import CanonicalMotion
from .rotations import matrix_to_euler, quat_to_matrix
from .skeleton import CHILDREN, JOINT_NAMES, PARENTS, REST_BONE_VECTORS, REST_OFFSETS

ROTATION_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
# BVH applies the listed channels left to right as R = Rz @ Rx @ Ry: Y first, then X, then Z, which is
# the rotations module's (Blender's) Euler order "YXZ".
_EULER_ORDER = "YXZ"
_AXIS = {"X": 0, "Y": 1, "Z": 2}


def _dfs_order() -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in CHILDREN[j]:
            visit(c)

    for root in (j for j, p in enumerate(PARENTS) if p < 0):
        visit(root)
    return order


def _fmt(values: Iterable[float]) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def write_bvh(motion: CanonicalMotion, path: str | Path, *, scale: float = 100.0) -> None:
    """Write motion as a BVH file (positions in metres * scale, rotations in degrees)."""
    order = _dfs_order()
    lines: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        kind = "ROOT" if PARENTS[j] < 0 else "JOINT"
        lines.append(f"{ind}{kind} {JOINT_NAMES[j]}")
        lines.append(f"{ind}{{")
        offset = np.zeros(3) if PARENTS[j] < 0 else REST_OFFSETS[j] * scale
        lines.append(f"{ind}\tOFFSET {_fmt(offset)}")
        if PARENTS[j] < 0:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {' '.join(ROTATION_CHANNELS)}")
        else:
            lines.append(f"{ind}\tCHANNELS 3 {' '.join(ROTATION_CHANNELS)}")
        if CHILDREN[j]:
            for c in CHILDREN[j]:
                emit(c, depth + 1)
        else:
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET {_fmt(REST_BONE_VECTORS[j] * scale)}")
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    for root in (j for j, p in enumerate(PARENTS) if p < 0):
        emit(root, 0)

    n = motion.num_frames
    euler = matrix_to_euler(quat_to_matrix(motion.rotations), _EULER_ORDER)  # (T, 52, 3) about X, Y, Z
    euler = np.degrees(np.unwrap(euler, axis=0)) if n > 1 else np.degrees(euler)
    cols = [_AXIS[c[0]] for c in ROTATION_CHANNELS]
    per_joint = euler[:, order][:, :, cols].reshape(n, -1)  # (T, 52 * 3) in hierarchy order
    data = np.concatenate([motion.root * scale, per_joint], axis=1)
    lines.append("MOTION")
    lines.append(f"Frames: {n}")
    lines.append(f"Frame Time: {1.0 / motion.fps:.8f}")
    body = "\n".join(" ".join(f"{v:.5f}" for v in row) for row in data)
    Path(path).write_text("\n".join(lines) + "\n" + body + ("\n" if n else ""), encoding="utf-8")
