"""The canonical skeleton: SMPL-X body and hands, 52 joints (no jaw or eyes), in SMPL-X order.

Coordinate frame (SMPL-X's): +Y up, the character faces +Z, the character's left is +X.
Rest pose is a T-pose with every joint frame aligned to the world, so a joint's local rotation
is its rotation relative to rest and forward kinematics needs no rest orientations.
Lengths are metres.
"""

from __future__ import annotations

import numpy as np

from .rotations import quat_rotate

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2", "right_middle3",
    "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1", "right_ring2", "right_ring3",
    "right_thumb1", "right_thumb2", "right_thumb3",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}

_BODY_PARENTS = {
    "pelvis": None, "left_hip": "pelvis", "right_hip": "pelvis", "spine1": "pelvis",
    "left_knee": "left_hip", "right_knee": "right_hip", "spine2": "spine1",
    "left_ankle": "left_knee", "right_ankle": "right_knee", "spine3": "spine2",
    "left_foot": "left_ankle", "right_foot": "right_ankle", "neck": "spine3",
    "left_collar": "spine3", "right_collar": "spine3", "head": "neck",
    "left_shoulder": "left_collar", "right_shoulder": "right_collar",
    "left_elbow": "left_shoulder", "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow", "right_wrist": "right_elbow",
}
FINGERS = ("index", "middle", "pinky", "ring", "thumb")


def _parent_of(name: str) -> str | None:
    if name in _BODY_PARENTS:
        return _BODY_PARENTS[name]
    side, finger = name.split("_")
    seg = int(finger[-1])
    return f"{side}_wrist" if seg == 1 else f"{side}_{finger[:-1]}{seg - 1}"


PARENTS: tuple[int, ...] = tuple(
    -1 if _parent_of(n) is None else JOINT_INDEX[_parent_of(n)]  # type: ignore[index]
    for n in JOINT_NAMES
)

# Left-side offsets from the parent joint in the T-pose (the right side mirrors X).
# Proportions of an adult of about 1.72 m, close to the SMPL-X neutral model's joints.
_LEFT_AND_CENTRE_OFFSETS = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.06, -0.09, 0.0),
    "spine1": (0.0, 0.11, -0.015),
    "left_knee": (0.04, -0.38, 0.0),
    "spine2": (0.0, 0.13, 0.005),
    "left_ankle": (-0.01, -0.40, -0.04),
    "spine3": (0.0, 0.055, 0.0),
    "left_foot": (0.02, -0.06, 0.12),
    "neck": (0.0, 0.21, -0.03),
    "left_collar": (0.07, 0.11, -0.01),
    "head": (0.0, 0.09, 0.05),
    "left_shoulder": (0.12, 0.045, -0.01),
    "left_elbow": (0.26, 0.0, -0.02),
    "left_wrist": (0.25, 0.01, 0.0),
    "left_index1": (0.090, -0.005, 0.025), "left_index2": (0.035, 0.0, 0.0), "left_index3": (0.025, 0.0, 0.0),
    "left_middle1": (0.095, 0.0, 0.005), "left_middle2": (0.040, 0.0, 0.0), "left_middle3": (0.028, 0.0, 0.0),
    "left_pinky1": (0.075, -0.01, -0.035), "left_pinky2": (0.025, 0.0, 0.0), "left_pinky3": (0.020, 0.0, 0.0),
    "left_ring1": (0.088, -0.005, -0.015), "left_ring2": (0.035, 0.0, 0.0), "left_ring3": (0.025, 0.0, 0.0),
    "left_thumb1": (0.025, -0.012, 0.030), "left_thumb2": (0.030, -0.005, 0.022), "left_thumb3": (0.025, -0.003, 0.018),
}
# Where a leaf joint's bone ends (BVH End Site, and the bone direction of leaves).
_LEAF_TIPS = {
    "head": (0.0, 0.20, 0.0),
    "left_foot": (0.0, -0.02, 0.07),
    "left_index3": (0.022, 0.0, 0.0), "left_middle3": (0.024, 0.0, 0.0),
    "left_pinky3": (0.018, 0.0, 0.0), "left_ring3": (0.022, 0.0, 0.0),
    "left_thumb3": (0.020, -0.002, 0.014),
}
REST_PELVIS_HEIGHT = 0.93


def _mirror(name: str) -> str:
    return name.replace("left_", "right_") if name.startswith("left_") else name


def _offset_table(table: dict[str, tuple[float, float, float]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, off in table.items():
        out[name] = np.array(off, dtype=np.float64)
        if name.startswith("left_"):
            out[_mirror(name)] = np.array(off, dtype=np.float64) * np.array([-1.0, 1.0, 1.0])
    return out


_OFFSETS = _offset_table(_LEFT_AND_CENTRE_OFFSETS)
REST_OFFSETS: np.ndarray = np.stack([_OFFSETS[n] for n in JOINT_NAMES])  # (52, 3)
_TIPS = _offset_table(_LEAF_TIPS)

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c, p in enumerate(PARENTS) if p == j) for j in range(NUM_JOINTS)
)


def _primary_child(name: str) -> str | None:
    """The child a joint's bone points at (for chains with several children)."""
    special = {"pelvis": "spine1", "spine3": "neck"}
    if name in special:
        return special[name]
    if name.endswith("_wrist"):
        return name.replace("wrist", "middle1")
    kids = CHILDREN[JOINT_INDEX[name]]
    return JOINT_NAMES[kids[0]] if kids else None


PRIMARY_CHILD: tuple[int, ...] = tuple(
    -1 if _primary_child(n) is None else JOINT_INDEX[_primary_child(n)]  # type: ignore[index]
    for n in JOINT_NAMES
)


def bone_vector(joint: int) -> np.ndarray:
    """Rest-pose vector of the bone that starts at a joint (towards its primary child, or its tip)."""
    child = PRIMARY_CHILD[joint]
    if child >= 0:
        return REST_OFFSETS[child].copy()
    return _TIPS[JOINT_NAMES[joint]].copy()


REST_BONE_VECTORS: np.ndarray = np.stack([bone_vector(j) for j in range(NUM_JOINTS)])

BODY_PARTS: dict[str, tuple[str, ...]] = {
    "head": ("neck", "head"),
    "torso": ("spine1", "spine2", "spine3", "left_collar", "right_collar"),
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
    "left_hand": tuple(n for n in JOINT_NAMES if n.startswith("left_") and n[5:-1] in FINGERS),
    "right_hand": tuple(n for n in JOINT_NAMES if n.startswith("right_") and n[6:-1] in FINGERS),
    "lower_body": ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee",
                   "left_ankle", "right_ankle", "left_foot", "right_foot"),
}
PART_OF_JOINT: dict[str, str] = {j: part for part, joints in BODY_PARTS.items() for j in joints}
MIRROR_INDEX: tuple[int, ...] = tuple(
    JOINT_INDEX[n.replace("left_", "right_") if n.startswith("left_") else n.replace("right_", "left_")]
    for n in JOINT_NAMES
)


def rest_positions() -> np.ndarray:
    """World joint positions (52, 3) of the rest T-pose, feet on the ground."""
    pos = np.zeros((NUM_JOINTS, 3))
    for j, p in enumerate(PARENTS):
        pos[j] = REST_OFFSETS[j] if p < 0 else pos[p] + REST_OFFSETS[j]
    pos[:, 1] += REST_PELVIS_HEIGHT
    return pos


def _tree_levels() -> list[tuple[np.ndarray, np.ndarray]]:
    """Joints grouped by depth in the tree, with their parents: FK runs one batched step per level."""
    depth = [0] * NUM_JOINTS
    for j, p in enumerate(PARENTS):
        depth[j] = 0 if p < 0 else depth[p] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        js = np.array([j for j in range(NUM_JOINTS) if depth[j] == d])
        levels.append((js, np.array([PARENTS[j] for j in js])))
    return levels


_LEVELS = _tree_levels()


def forward_kinematics(local_quats: np.ndarray, root: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations (..., 52, 4) and joint positions (..., 52, 3).

    local_quats: (..., 52, 4) rotations relative to the T-pose rest; root: (..., 3) pelvis position
    (defaults to the rest pelvis height). Batched over tree levels, with components laid out
    (4, joints, frames) so the gathers along joints stay cheap on long clips.
    """
    q = np.asarray(local_quats, dtype=np.float64)
    lead = q.shape[:-2]
    n = int(np.prod(lead)) if lead else 1
    c = np.ascontiguousarray(np.transpose(q.reshape(n, NUM_JOINTS, 4), (2, 1, 0)))
    g = np.empty_like(c)
    p = np.empty((3, NUM_JOINTS, n))
    g[:, 0] = c[:, 0]
    if root is None:
        p[:, 0] = np.array([0.0, REST_PELVIS_HEIGHT, 0.0])[:, None]
    else:
        p[:, 0] = np.broadcast_to(np.asarray(root, dtype=np.float64), lead + (3,)).reshape(n, 3).T
    off = REST_OFFSETS[:, :, None]
    for js, ps in _LEVELS:
        aw, ax, ay, az = g[:, ps]
        bw, bx, by, bz = c[:, js]
        g[0, js] = aw * bw - ax * bx - ay * by - az * bz
        g[1, js] = aw * bx + ax * bw + ay * bz - az * by
        g[2, js] = aw * by - ax * bz + ay * bw + az * bx
        g[3, js] = aw * bz + ax * by - ay * bx + az * bw
        # Rotate the rest offset by the parent's global rotation: v + 2w(u x v) + 2u x (u x v).
        vx, vy, vz = off[js, 0], off[js, 1], off[js, 2]
        tx, ty, tz = 2.0 * (ay * vz - az * vy), 2.0 * (az * vx - ax * vz), 2.0 * (ax * vy - ay * vx)
        p[0, js] = p[0, ps] + vx + aw * tx + (ay * tz - az * ty)
        p[1, js] = p[1, ps] + vy + aw * ty + (az * tx - ax * tz)
        p[2, js] = p[2, ps] + vz + aw * tz + (ax * ty - ay * tx)
    glob = np.transpose(g, (2, 1, 0)).reshape(lead + (NUM_JOINTS, 4))
    pos = np.transpose(p, (2, 1, 0)).reshape(lead + (NUM_JOINTS, 3))
    return glob, pos


def bone_directions(global_quats: np.ndarray) -> np.ndarray:
    """Unit world direction (..., 52, 3) of each joint's bone under the given global rotations."""
    vecs = quat_rotate(global_quats, np.broadcast_to(REST_BONE_VECTORS, global_quats.shape[:-1] + (3,)))
    return vecs / np.linalg.norm(vecs, axis=-1, keepdims=True)


# SMPL-X frame (+Y up, faces +Z) to Blender's (+Z up, a character faces -Y): +90 degrees about X.
CANONICAL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
