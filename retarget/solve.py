"""Rest-pose-correct retargeting of canonical motion onto a rig, in numpy (no bpy).

Everything happens in the rig's armature space with 3x3 rotations:
- C maps canonical axes (left, up, forward) to the rig's, found from the rig's own rest joints, so a
  rig facing +Y or lying in Y-up space works too.
- Each mapped bone gets a rest correction S_b, the shortest rotation taking the canonical bone
  direction onto the rig's rest bone direction, so A-pose rigs and any bone roll work.
- The desired armature-space orientation of bone b for joint j is  M_b = C G_j C^T S_b^T R_b
  (G_j: canonical global rotation relative to the T-pose, R_b: bone rest orientation). When G_j is the
  identity the bone points along the canonical T-pose direction; its twist follows the joint's.
- Local pose rotations are taken relative to the bone of the nearest mapped canonical ancestor A:
  basis_b = R_b^T R_A M_A^T M_b. Bones between A and b in the rig (helpers, twist bones, Rigify's
  constraint-driven MCH/ORG chains) are assumed to follow A rigidly, as they do at rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..inference.errors import RigError
from ..inference.motion import CanonicalMotion
from ..inference.rotations import matrix_to_quat, quat_make_continuous, quat_to_matrix
from ..inference.skeleton import (
    JOINT_INDEX,
    JOINT_NAMES,
    PARENTS,
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


def _snap_to_axis(v: np.ndarray, max_angle_deg: float = 25.0) -> np.ndarray:
    """The signed armature axis nearest to v, if within max_angle_deg; else v itself. Rigs are
    modelled axis-aligned, while their spines lean and shoulders sit unevenly by a few degrees."""
    v = _unit(v)
    k = int(np.argmax(np.abs(v)))
    axis = np.zeros(3)
    axis[k] = np.sign(v[k])
    return axis if np.dot(axis, v) >= np.cos(np.radians(max_angle_deg)) else v


def canonical_frame(rig: RigRest, joints: dict[str, str]) -> np.ndarray:
    """C: columns are the rig's left, up and forward directions, from its rest joint positions."""

    def head(joint: str) -> np.ndarray | None:
        bone = joints.get(joint)
        return rig.heads[rig.index[bone]] if bone else None

    left = None
    for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_collar", "right_collar")):
        ha, hb = head(a), head(b)
        if ha is not None and hb is not None and np.linalg.norm(ha - hb) > 1e-6:
            left = _snap_to_axis(ha - hb)
            break
    low = head("pelvis")
    high = head("neck") if head("neck") is not None else head("head")
    if left is None or low is None or high is None:
        raise RigError("Cannot tell which way the rig faces: it needs mapped left/right shoulders, a pelvis and a neck")
    up = _snap_to_axis(high - low)
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

    # Each mapped bone turns relative to the bone of its nearest mapped canonical ancestor (its
    # "driver"), measured against their rest relation. Bones in between (Rigify's MCH and ORG
    # chains, twist or helper bones) are assumed to carry the driver rigidly, as they do at rest;
    # this is what makes control rigs whose hierarchy runs through constraints come out right.
    desired: dict[str, np.ndarray] = {}
    rotations: dict[str, np.ndarray] = {}
    corrections: dict[str, np.ndarray] = {}
    for joint, bone in sorted(joints.items(), key=lambda jb: JOINT_INDEX[jb[0]]):
        j = JOINT_INDEX[joint]
        i = rig.index[bone]
        if joint in _NO_DIRECTION_MATCH:
            S = np.eye(3)
        else:
            S = _rotation_between(C @ REST_BONE_VECTORS[j], rest_rot[i][:, 1])
        corrections[bone] = S
        desired[bone] = C @ glob[:, j] @ C.T @ S.T @ rest_rot[i]
        driver = _mapped_ancestor(j, joints)
        if driver is None:
            # The root of the mapped set: its rig parents stay at rest.
            frame = rest_rot[i]
            basis = frame.T @ desired[bone]
        else:
            a = rig.index[joints[driver]]
            basis = rest_rot[i].T @ rest_rot[a] @ np.swapaxes(desired[joints[driver]], -1, -2) @ desired[bone]
        rotations[bone] = quat_make_continuous(matrix_to_quat(basis)).astype(np.float64)

    root_bone = joints.get("pelvis")
    root_location = None
    if root_bone is not None:
        i = rig.index[root_bone]
        # Canonical metres to armature units through the rig's own height.
        scale = rig_height(rig) / float(np.ptp(rest_positions()[:, 1]) + 0.2)
        delta = (motion.root - np.array([0.0, REST_PELVIS_HEIGHT, 0.0])) * scale
        delta_arm = delta @ C.T
        # Location keys live in the bone's rest frame; the pelvis bone's own parents stay at rest.
        root_location = delta_arm @ rest_rot[i]
    return RetargetResult(rotations, root_bone, root_location, C, corrections)


def _mapped_ancestor(joint: int, joints: dict[str, str]) -> str | None:
    p = PARENTS[joint]
    while p >= 0:
        if JOINT_NAMES[p] in joints:
            return JOINT_NAMES[p]
        p = PARENTS[p]
    return None


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
