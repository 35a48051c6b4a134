"""Retarget math without Blender: bone maps, the rest-pose-correct solver, rotation channels."""

from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.errors import RigError
from gestura.inference.motion import CanonicalMotion, resample_motion
from gestura.inference.rotations import (
    EULER_ORDERS,
    axis_angle_to_quat,
    euler_to_matrix,
    quat_from_axis_angle,
    quat_rotate,
    quat_to_matrix,
)
from gestura.inference.skeleton import (
    CANONICAL_TO_BLENDER,
    JOINT_INDEX,
    JOINT_NAMES,
    NUM_JOINTS,
    PARENTS,
    REST_BONE_VECTORS,
    bone_directions,
    forward_kinematics,
)
from gestura.retarget.bonemaps import PRESETS, detect_bone_map
from gestura.retarget.channels import rotation_channels
from gestura.retarget.solve import RigRest, retarget, world_bone_directions


def _bone_matrix(head: np.ndarray, tail: np.ndarray, roll: float) -> np.ndarray:
    """Like Blender's bone.matrix_local: Y along the bone, rolled about it."""
    y = (tail - head) / np.linalg.norm(tail - head)
    ref = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(y, ref)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1) @ quat_to_matrix(quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), roll))
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = head
    return m


def make_rig(naming: str = "smplx", a_pose: bool = False, seed: int = 0, frame: np.ndarray | None = None,
             drop: tuple[str, ...] = ()) -> RigRest:
    """A rig with the canonical proportions: random bone rolls, optional A-pose, any armature frame."""
    rng = np.random.default_rng(seed)
    q = np.zeros((NUM_JOINTS, 4))
    q[:, 0] = 1.0
    if a_pose:
        q[JOINT_INDEX["left_shoulder"]] = quat_from_axis_angle(np.array([0, 0, 1.0]), -0.7)
        q[JOINT_INDEX["right_shoulder"]] = quat_from_axis_angle(np.array([0, 0, 1.0]), 0.7)
    glob, pos = forward_kinematics(q)
    tails = pos + quat_rotate(glob, REST_BONE_VECTORS)
    to_arm = (frame if frame is not None else np.eye(3)) @ CANONICAL_TO_BLENDER
    names = PRESETS[naming].joints
    keep = [j for j in range(NUM_JOINTS) if JOINT_NAMES[j] in names and JOINT_NAMES[j] not in drop]
    index = {j: k for k, j in enumerate(keep)}
    parents = []
    for j in keep:
        p = PARENTS[j]
        while p >= 0 and p not in index:
            p = PARENTS[p]
        parents.append(index[p] if p >= 0 else -1)
    mats = np.array([_bone_matrix(to_arm @ pos[j], to_arm @ tails[j], rng.uniform(-np.pi, np.pi)) for j in keep])
    return RigRest([names[JOINT_NAMES[j]] for j in keep], parents, mats, np.array([to_arm @ tails[j] for j in keep]))


def random_motion(frames: int = 8, seed: int = 1, scale: float = 0.6) -> CanonicalMotion:
    rng = np.random.default_rng(seed)
    root = np.tile([0.0, 0.93, 0.0], (frames, 1)) + rng.normal(0, 0.03, (frames, 3))
    return CanonicalMotion(axis_angle_to_quat(rng.normal(0, scale, (frames, NUM_JOINTS, 3))), root)


def direction_errors(rig: RigRest, motion: CanonicalMotion, frame: np.ndarray | None = None) -> np.ndarray:
    bone_map = detect_bone_map(rig.names)
    result = retarget(motion, rig, bone_map.joints)
    got = world_bone_directions(rig, result.rotations)
    glob, _ = forward_kinematics(motion.rotations, motion.root)
    want = bone_directions(glob) @ ((frame if frame is not None else np.eye(3)) @ CANONICAL_TO_BLENDER).T
    joints = [j for j in bone_map.joints if j != "pelvis"]
    g = got[:, [rig.index[bone_map.joints[j]] for j in joints]]
    w = want[:, [JOINT_INDEX[j] for j in joints]]
    return np.degrees(np.arccos(np.clip((g * w).sum(-1), -1, 1)))


@pytest.mark.parametrize("a_pose", [False, True])
@pytest.mark.parametrize("naming", ["smplx", "mixamo", "mixamo_no_prefix"])
def test_every_mapped_bone_points_where_the_canonical_bone_points(naming, a_pose):
    errors = direction_errors(make_rig(naming, a_pose, seed=3), random_motion())
    assert errors.max() < 0.01


def test_a_y_up_armature_facing_plus_y_is_handled_through_its_rest_data():
    # Armature space rotated 180 degrees about up, then made Y-up (as FBX data can be).
    frame = np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]) @ np.diag([1.0, -1.0, 1.0])
    frame = frame * np.sign(np.linalg.det(frame))  # keep it a rotation
    errors = direction_errors(make_rig("smplx", seed=5, frame=frame), random_motion(), frame)
    assert errors.max() < 0.01


def test_missing_spine_and_finger_joints_still_land_the_arms():
    drop = ("spine1", "spine2") + tuple(n for n in JOINT_NAMES if "index" in n or "thumb" in n)
    rig = make_rig("smplx", seed=6, drop=drop)
    bone_map = detect_bone_map(rig.names)
    assert "spine1" in bone_map.unmapped and "left_index1" in bone_map.unmapped
    assert direction_errors(rig, random_motion()).max() < 0.01


def test_rest_motion_puts_an_a_pose_rig_into_the_canonical_t_pose():
    rig = make_rig("mixamo", a_pose=True, seed=2)
    result = retarget(CanonicalMotion.rest(2), rig, detect_bone_map(rig.names).joints)
    dirs = world_bone_directions(rig, result.rotations)
    left_arm = dirs[0, rig.index["mixamorig:LeftArm"]]
    canonical = CANONICAL_TO_BLENDER @ REST_BONE_VECTORS[JOINT_INDEX["left_shoulder"]]
    assert np.allclose(left_arm, canonical / np.linalg.norm(canonical), atol=1e-6)
    assert left_arm[0] > 0.99  # horizontal, pointing to the rig's left


def test_root_motion_scales_with_the_rig():
    motion = CanonicalMotion.rest(3)
    motion.root[:, 2] += np.array([0.0, 0.1, 0.2])  # walk 20 cm forward (canonical +Z)
    small = make_rig("smplx", seed=1)
    big = RigRest(small.names, small.parents, small.matrices * np.r_[[100.0] * 3, 1.0][:, None] * 1.0,
                  small.tails * 100.0)
    big.matrices[:, :3, :3] = small.matrices[:, :3, :3]
    big.matrices[:, 3, :] = [0, 0, 0, 1]
    loc_small = retarget(motion, small, detect_bone_map(small.names).joints).root_location
    loc_big = retarget(motion, big, detect_bone_map(big.names).joints).root_location
    assert np.allclose(loc_big, 100 * loc_small, atol=1e-6)
    pelvis_rest = small.rotations[small.index["pelvis"]]
    moved = pelvis_rest @ loc_small[2]  # back to armature space: forward is -Y in Blender
    assert moved[1] < -0.15 and abs(moved[0]) < 1e-6


def test_detection_reports_preset_and_unmapped_joints():
    names = list(PRESETS["mixamo"].joints.values())
    names = [n for n in names if "Pinky" not in n] + ["mixamorig:HeadTop_End", "Camera_Target"]
    bone_map = detect_bone_map(names)
    assert bone_map.preset == "mixamo"
    assert set(bone_map.unmapped) == {n for n in JOINT_NAMES if "pinky" in n}
    assert "left fingers (left_pinky1-3: the fingers stay still)" in bone_map.describe()


def test_detection_tolerates_case_and_separators():
    names = [n.replace("mixamorig:", "mixamorig_").upper() for n in PRESETS["mixamo"].joints.values()]
    bone_map = detect_bone_map(names)
    assert bone_map.joints["left_wrist"] == "MIXAMORIG_LEFTHAND"


def test_unknown_rig_raises_with_the_missing_core_joints():
    with pytest.raises(RigError, match=r"no bones found for pelvis, neck, head, left_shoulder"):
        detect_bone_map(["Bone", "Bone.001", "Bone.002"])


def test_rigify_preset_keys_fk_switches():
    bones = list(PRESETS["rigify"].joints.values()) + ["upper_arm_parent.L", "upper_arm_parent.R", "torso"]
    bone_map = detect_bone_map(bones)
    assert bone_map.preset == "rigify"
    assert bone_map.extra_keys["upper_arm_parent.L"]["IK_FK"] == 1.0
    assert bone_map.extra_keys["torso"] == {"neck_follow": 1.0, "head_follow": 1.0}


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_euler_channels_reproduce_the_rotation_and_stay_continuous(order):
    t = np.linspace(0, 4 * np.pi, 200)
    quats = quat_from_axis_angle(np.array([0.3, 1.0, 0.2]), t)  # two full turns
    prop, values = rotation_channels(quats, order)
    assert prop == "rotation_euler" and values.shape == (200, 3)
    assert np.allclose(euler_to_matrix(values, order), quat_to_matrix(quats), atol=1e-6)
    # Near gimbal lock the outer angles move fast, but a branch flip or a wrap would step by ~pi or 2 pi.
    assert np.abs(np.diff(values, axis=0)).max() < 1.0


def test_quaternion_and_axis_angle_channels():
    quats = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), np.linspace(0, 3 * np.pi, 50))
    prop, q = rotation_channels(quats, "QUATERNION")
    assert prop == "rotation_quaternion" and (np.sum(q[1:] * q[:-1], -1) > 0).all()
    prop, aa = rotation_channels(quats[:5], "AXIS_ANGLE")
    assert prop == "rotation_axis_angle"
    assert np.allclose(aa[1:, 1:], [0, 0, 1]) and np.allclose(aa[:, 0], np.linspace(0, 3 * np.pi, 50)[:5])
    with pytest.raises(ValueError):
        rotation_channels(quats, "SIDEWAYS")


def test_resampling_to_24_fps_keeps_duration_and_end_poses():
    motion = random_motion(frames=60, scale=0.3)
    out = resample_motion(motion, 24.0)
    assert out.num_frames == 48 and out.fps == 24.0
    assert np.allclose(out.rotations[0], motion.rotations[0])
