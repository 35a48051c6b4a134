"""Rest-pose-correct retargeting of canonical motion onto a rig, in numpy (no bpy).

Everything happens in the rig's armature space with 3x3 rotations (the object's own rotation and scale,
FBX's 90 degrees and 0.01 included, act on the whole armature and change nothing here):
- C maps canonical axes (left, up, forward) to the rig's, found from the rig's own rest joints, so a
  rig facing +Y or lying in Y-up space works too.
- Each mapped bone gets a rest correction S_b, the shortest rotation taking the canonical bone
  direction onto the rig's rest bone direction, so A-pose rigs and any bone roll work.
- The desired armature-space orientation of bone b for joint j is  M_b = C G_j C^T S_b^T R_b
  (G_j: canonical global rotation relative to the T-pose, R_b: bone rest orientation). When G_j is the
  identity the bone points along the canonical T-pose direction; its twist follows the joint's.
- Missing joints: when the canonical child of j is not mapped (a rig with fewer spine bones, no neck, no
  collar), the bone of j aims at the next mapped joint down the canonical chain instead (G_j gets the swing
  that takes its rest span onto the frame's span), so the chain's end still lands where the canonical
  motion puts it and the missing joint's rotation is spread over the mapped bones.
- Local pose rotations are taken relative to the bone's "driver" D: basis_b = R_b^T R_D M_D^T M_b. The
  driver is the nearest mapped bone up the rig's own hierarchy, through unmapped bones that have no
  constraints (helpers, twist bones, extra spine or neck bones: they follow rigidly, as at rest). When
  the walk meets a constrained bone first (Rigify's MCH/ORG chains), the bone of the nearest mapped
  canonical ancestor is the driver: such chains are built to carry it. When it meets the root, or a bone
  that does not inherit rotation, the bone's parent frame is its rest frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inference.errors import RigError
from ..inference.motion import CanonicalMotion
from ..inference.rotations import matrix_to_quat, quat_between, quat_make_continuous, quat_to_matrix
from ..inference.skeleton import (
    JOINT_INDEX,
    JOINT_NAMES,
    PARENTS,
    PRIMARY_CHILD,
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
    # Optional, read from Blender when available (defaults: a plain rig at the world origin):
    world: np.ndarray | None = None  # (4, 4) the object's matrix_world
    constrained: list[bool] | None = None  # the pose bone has active constraints
    inherit_rotation: list[bool] | None = None  # bone.use_inherit_rotation
    deform: list[bool] | None = None  # bone.use_deform

    def __post_init__(self) -> None:
        self.matrices = np.asarray(self.matrices, dtype=np.float64)
        self.tails = np.asarray(self.tails, dtype=np.float64)
        self.index = {n: i for i, n in enumerate(self.names)}
        for i, p in enumerate(self.parents):
            if p >= i:
                raise ValueError("RigRest bones must be ordered parents first")
        n = len(self.names)
        self.world = np.eye(4) if self.world is None else np.asarray(self.world, dtype=np.float64)
        if self.constrained is None:
            self.constrained = [False] * n
        if self.inherit_rotation is None:
            self.inherit_rotation = [True] * n

    @property
    def rotations(self) -> np.ndarray:
        return self.matrices[:, :3, :3]

    @property
    def heads(self) -> np.ndarray:
        return self.matrices[:, :3, 3]

    def world_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest heads and tails (B, 3) in world space."""
        w = self.world
        assert w is not None
        return self.heads @ w[:3, :3].T + w[:3, 3], self.tails @ w[:3, :3].T + w[:3, 3]


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


def rig_height(rig: RigRest, up: np.ndarray | None = None) -> float:
    """The rig's rest height in armature units, along its up axis (armature Z when not given)."""
    pts = np.concatenate([rig.heads, rig.tails])
    h = pts @ (np.array([0.0, 0.0, 1.0]) if up is None else up)
    return float(h.max() - h.min())


def span_targets(joints: dict[str, str] | set[str]) -> dict[int, int]:
    """Mapped joint -> the mapped joint its bone aims at, for mapped joints whose canonical primary child
    is not mapped but a joint further down that chain is (the missing joints in between are spanned)."""
    out: dict[int, int] = {}
    for joint in joints:
        j = JOINT_INDEX[joint]
        k = PRIMARY_CHILD[j]
        if k < 0 or JOINT_NAMES[k] in joints or joint in _NO_DIRECTION_MATCH:
            continue
        while k >= 0 and JOINT_NAMES[k] not in joints:
            k = PRIMARY_CHILD[k]
        if k >= 0:
            out[j] = k
    return out


_STATIC = -1


def _driver(rig: RigRest, bone: int, joint: int, mapped_bones: set[int], joints: dict[str, str]) -> int:
    """The bone whose pose the bone's basis is relative to (see the module doc), or _STATIC."""
    assert rig.inherit_rotation is not None and rig.constrained is not None
    cur = bone
    while True:
        if not rig.inherit_rotation[cur]:
            return _STATIC
        p = rig.parents[cur]
        if p < 0:
            return _STATIC
        if p in mapped_bones:
            return p
        if rig.constrained[p]:
            ancestor = _mapped_ancestor(joint, joints)
            return _STATIC if ancestor is None else rig.index[joints[ancestor]]
        cur = p


def retarget(
    motion: CanonicalMotion, rig: RigRest, joints: dict[str, str] | Any, *, root_motion: bool | None = None
) -> RetargetResult:
    """Local rotations (and root location) that make the rig's mapped bones follow the motion.

    joints: canonical joint -> bone, or a BoneMap (its joints and root_motion setting). root_motion: key
    the pelvis bone's location (default: the BoneMap's setting, else on)."""
    if hasattr(joints, "joints"):
        if root_motion is None:
            root_motion = bool(getattr(joints, "root_motion", True))
        joints = joints.joints
    root_motion = True if root_motion is None else root_motion
    if not joints:
        raise RigError("No bones are mapped")
    for joint, bone in joints.items():
        if joint not in JOINT_INDEX:
            raise RigError(f"Unknown canonical joint {joint!r} in the bone map")
        if bone not in rig.index:
            raise RigError(f"Mapped bone {bone!r} is not in the rig")
    if len(set(joints.values())) != len(joints):
        raise RigError("A bone is mapped to two canonical joints")
    C = canonical_frame(rig, joints)
    rest_rot = rig.rotations
    glob_q, glob_pos = forward_kinematics(motion.rotations, motion.root)
    glob = quat_to_matrix(glob_q)  # (T, 52, 3, 3)
    spans = span_targets(joints)
    rest_pos = rest_positions()

    desired: dict[str, np.ndarray] = {}
    corrections: dict[str, np.ndarray] = {}
    for joint, bone in joints.items():
        j = JOINT_INDEX[joint]
        i = rig.index[bone]
        G = glob[:, j]
        if joint in _NO_DIRECTION_MATCH:
            S = np.eye(3)
        elif j in spans:
            k = spans[j]
            rest_span = rest_pos[k] - rest_pos[j]
            swing = quat_to_matrix(quat_between(G @ rest_span, glob_pos[:, k] - glob_pos[:, j]))
            G = swing @ G
            S = _rotation_between(C @ rest_span, rest_rot[i][:, 1])
        else:
            S = _rotation_between(C @ REST_BONE_VECTORS[j], rest_rot[i][:, 1])
        corrections[bone] = S
        desired[bone] = C @ G @ C.T @ S.T @ rest_rot[i]

    mapped_bones = {rig.index[b] for b in joints.values()}
    rotations: dict[str, np.ndarray] = {}
    for joint, bone in sorted(joints.items(), key=lambda jb: JOINT_INDEX[jb[0]]):
        i = rig.index[bone]
        d = _driver(rig, i, JOINT_INDEX[joint], mapped_bones, joints)
        if d == _STATIC:
            basis = rest_rot[i].T @ desired[bone]
        else:
            basis = rest_rot[i].T @ rest_rot[d] @ np.swapaxes(desired[rig.names[d]], -1, -2) @ desired[bone]
        rotations[bone] = quat_make_continuous(matrix_to_quat(basis)).astype(np.float64)

    root_bone = joints.get("pelvis")
    root_location = None
    if root_bone is not None and root_motion:
        i = rig.index[root_bone]
        # Canonical metres to armature units through the rig's own height.
        scale = rig_height(rig, C[:, 1]) / float(np.ptp(rest_positions()[:, 1]) + 0.2)
        delta = (motion.root - np.array([0.0, REST_PELVIS_HEIGHT, 0.0])) * scale
        delta_arm = delta @ C.T
        # Location keys live in the bone's rest frame; the pelvis bone's own parents stay at rest.
        root_location = delta_arm @ rest_rot[i]
    return RetargetResult(rotations, root_bone if root_location is not None else None, root_location, C,
                          corrections)


def _mapped_ancestor(joint: int, joints: dict[str, str]) -> str | None:
    p = PARENTS[joint]
    while p >= 0:
        if JOINT_NAMES[p] in joints:
            return JOINT_NAMES[p]
        p = PARENTS[p]
    return None


def world_bone_directions(rig: RigRest, pose_basis: dict[str, np.ndarray]) -> np.ndarray:
    """Armature-space direction (T, B, 3) of every bone under local basis quaternions, assuming a
    plain hierarchy (no constraints; bones that do not inherit rotation keep their rest frame as parent
    frame). Used to check the solver without Blender."""
    n_frames = next(iter(pose_basis.values())).shape[0]
    rest_rot = rig.rotations
    inherit = rig.inherit_rotation or [True] * len(rig.names)
    pose = np.empty((len(rig.names), n_frames, 3, 3))
    for i, parent in enumerate(rig.parents):
        if parent < 0 or not inherit[i]:
            parent, rel = -1, rest_rot[i]
        else:
            rel = rest_rot[parent].T @ rest_rot[i]
        parent_pose = pose[parent] if parent >= 0 else np.eye(3)
        basis = quat_to_matrix(pose_basis[rig.names[i]]) if rig.names[i] in pose_basis else np.eye(3)
        pose[i] = parent_pose @ rel @ basis
    return np.moveaxis(pose[:, :, :, 1], 0, 1)
