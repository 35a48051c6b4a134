"""Rest-pose-correct retargeting of canonical motion onto a rig, in numpy (no bpy).

Everything happens in the rig's armature space with 3x3 rotations:
- C maps canonical axes (left, up, forward) to the rig's, found from the rig's own rest joints, so a
  rig facing +Y or lying in Y-up space works too.
- Each mapped bone gets a rest correction S_b, the shortest rotation taking the canonical bone
  direction onto the rig's rest bone direction, so A-pose rigs and any bone roll work.
- The desired armature-space orientation of bone b for joint j is  M_b = C G_j C^T S_b^T R_b
  (G_j: canonical global rotation relative to the T-pose, R_b: bone rest orientation). When G_j is the
  identity the bone points along the canonical T-pose direction; its twist follows the joint's.
- Local pose rotations follow from the rig's own hierarchy: basis_b = (R_p^T R_b)^T P_b^T M_b, with
  unmapped bones in between carried rigidly by their parents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..inference.errors import RigError
from ..inference.motion import CanonicalMotion
from ..inference.rotations import matrix_to_quat, quat_make_continuous, quat_to_matrix
from ..inference.skeleton import (
    JOINT_INDEX,
    REST_BONE_VECTORS,
    REST_PELVIS_HEIGHT,
    forward_kinematics,
    rest_positions,
)

# Canonical joints whose rig bone is a control that need not point along the canonical bone
# (Rigify's torso points backwards): no rest correction, the bone simply turns with the joint.
_NO_DIRECTION_MATCH = frozenset({"pelvis"})


@dataclass
class RigRest:
    """A rig's rest data in armature space, as read from Blender (or built by tests)."""

    names: list[str]
    parents: list[int]  # -1 for roots; parents come before children
    matrices: np.ndarray  # (B, 4, 4) bone.matrix_local: rest orientation and head position
    tails: np.ndarray  # (B, 3) rest tail positions

    def __post_init__(self) -> None:
        self.matrices = np.asarray(self.matrices, dtype=np.float64)
        self.tails = np.asarray(self.tails, dtype=np.float64)
        self.index = {n: i for i, n in enumerate(self.names)}
        for i, p in enumerate(self.parents):
            if p >= i:
                raise ValueError("RigRest bones must be ordered parents first")

    @property
    def rotations(self) -> np.ndarray:
        return self.matrices[:, :3, :3]

    @property
    def heads(self) -> np.ndarray:
        return self.matrices[:, :3, 3]


@dataclass
class RetargetResult:
    """Local pose channels for the rig, ready to key."""

    rotations: dict[str, np.ndarray]  # bone -> (T, 4) basis quaternions, sign-continuous
    root_bone: str | None
    root_location: np.ndarray | None  # (T, 3) basis location of the root bone, in armature units
    canonical_to_rig: np.ndarray  # (3, 3) C
    rest_corrections: dict[str, np.ndarray] = field(default_factory=dict)  # bone -> (3, 3) S_b


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def canonical_frame(rig: RigRest, joints: dict[str, str]) -> np.ndarray:
    """C: columns are the rig's left, up and forward directions, from its rest joint positions."""

    def head(joint: str) -> np.ndarray | None:
        bone = joints.get(joint)
        return rig.heads[rig.index[bone]] if bone else None

    left = None
    for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_collar", "right_collar")):
        ha, hb = head(a), head(b)
        if ha is not None and hb is not None and np.linalg.norm(ha - hb) > 1e-6:
            left = _unit(ha - hb)
            break
    low = head("pelvis")
    high = head("neck") if head("neck") is not None else head("head")
    if left is None or low is None or high is None:
        raise RigError("Cannot tell which way the rig faces: it needs mapped left/right shoulders, a pelvis and a neck")
    up = _unit(high - low)
    up = _unit(up - np.dot(up, left) * left)
    forward = np.cross(left, up)
    return np.stack([left, up, forward], axis=1)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 shortest-arc rotation taking unit vector a onto unit vector b."""
    a, b = _unit(a), _unit(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:
        axis = _unit(np.cross(a, [1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.cross(a, [0.0, 1.0, 0.0]))
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def rig_height(rig: RigRest) -> float:
    pts = np.concatenate([rig.heads, rig.tails])
    return float(pts[:, 2].max() - pts[:, 2].min())


def retarget(motion: CanonicalMotion, rig: RigRest, joints: dict[str, str]) -> RetargetResult:
    """Local rotations (and root location) that make the rig's mapped bones follow the motion."""
    if not joints:
        raise RigError("No bones are mapped")
    for bone in joints.values():
        if bone not in rig.index:
            raise RigError(f"Mapped bone {bone!r} is not in the rig")
    C = canonical_frame(rig, joints)
    rest_rot = rig.rotations
    glob_q, _ = forward_kinematics(motion.rotations, motion.root)
    glob = quat_to_matrix(glob_q)  # (T, 52, 3, 3)
    n_frames = motion.num_frames

    bone_to_joint = {bone: joint for joint, bone in joints.items()}
    # Only bones on the way from a root to a mapped bone matter.
    needed = np.zeros(len(rig.names), dtype=bool)
    for bone in joints.values():
        i = rig.index[bone]
        while i >= 0 and not needed[i]:
            needed[i] = True
            i = rig.parents[i]

    pose = np.empty((len(rig.names), n_frames, 3, 3))
    rotations: dict[str, np.ndarray] = {}
    corrections: dict[str, np.ndarray] = {}
    for i in np.flatnonzero(needed):
        name, parent = rig.names[i], rig.parents[i]
        parent_pose = pose[parent] if parent >= 0 else np.broadcast_to(np.eye(3), (n_frames, 3, 3))
        rel = rest_rot[parent].T @ rest_rot[i] if parent >= 0 else rest_rot[i]
        joint = bone_to_joint.get(name)
        if joint is None:
            pose[i] = parent_pose @ rel
            continue
        j = JOINT_INDEX[joint]
        if joint in _NO_DIRECTION_MATCH:
            S = np.eye(3)
        else:
            S = _rotation_between(C @ REST_BONE_VECTORS[j], rest_rot[i][:, 1])
        corrections[name] = S
        desired = C @ glob[:, j] @ C.T @ S.T @ rest_rot[i]
        pose[i] = desired
        basis = rel.T @ np.swapaxes(parent_pose, -1, -2) @ desired
        rotations[name] = quat_make_continuous(matrix_to_quat(basis)).astype(np.float64)

    root_bone = joints.get("pelvis")
    root_location = None
    if root_bone is not None:
        i = rig.index[root_bone]
        parent = rig.parents[i]
        # Canonical metres to armature units through the rig's own height.
        scale = rig_height(rig) / float(np.ptp(rest_positions()[:, 1]) + 0.2)
        delta = (motion.root - np.array([0.0, REST_PELVIS_HEIGHT, 0.0])) * scale
        delta_arm = delta @ C.T
        frame = (rest_rot[parent].T @ rest_rot[i]) if parent >= 0 else rest_rot[i]
        parent_pose = pose[parent] if parent >= 0 else np.broadcast_to(np.eye(3), (n_frames, 3, 3))
        # Location keys live in the bone's rest frame under its (posed) parent.
        to_local = np.swapaxes(parent_pose @ frame, -1, -2)
        root_location = np.einsum("tij,tj->ti", to_local, delta_arm)
    return RetargetResult(rotations, root_bone, root_location, C, corrections)


def world_bone_directions(rig: RigRest, pose_basis: dict[str, np.ndarray]) -> np.ndarray:
    """Armature-space direction (T, B, 3) of every bone under local basis quaternions, assuming a
    plain hierarchy (no constraints). Used to check the solver without Blender."""
    n_frames = next(iter(pose_basis.values())).shape[0]
    rest_rot = rig.rotations
    pose = np.empty((len(rig.names), n_frames, 3, 3))
    for i, parent in enumerate(rig.parents):
        rel = rest_rot[parent].T @ rest_rot[i] if parent >= 0 else rest_rot[i]
        parent_pose = pose[parent] if parent >= 0 else np.eye(3)
        basis = quat_to_matrix(pose_basis[rig.names[i]]) if rig.names[i] in pose_basis else np.eye(3)
        pose[i] = parent_pose @ rel @ basis
    return np.moveaxis(pose[:, :, :, 1], 0, 1)
