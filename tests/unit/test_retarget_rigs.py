"""The solver on every preset rig without Blender: rest-pose correctness (T and A poses, rolls, FBX units,
object rotation), extra and missing bones, drivers through constraints and non-inherited rotation, root
motion, rotation modes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.motion import CanonicalMotion
from gestura.inference.rotations import (
    EULER_ORDERS,
    axis_angle_to_quat,
    euler_to_matrix,
    quat_to_matrix,
)
from gestura.inference.skeleton import JOINT_NAMES, NUM_JOINTS, PRIMARY_CHILD, forward_kinematics
from gestura.retarget.channels import rotation_channels
from gestura.retarget.detect import detect_bone_map, manual_bone_map
from gestura.retarget.solve import RigRest, retarget, span_targets, world_bone_directions

ROOT = Path(__file__).resolve().parents[2]


def _rigspecs():
    if "rigspecs" not in sys.modules:
        spec = importlib.util.spec_from_file_location("rigspecs", ROOT / "tools" / "rigspecs.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["rigspecs"] = module
        spec.loader.exec_module(module)
    return sys.modules["rigspecs"]


rs = _rigspecs()
RIGS = ("smplx", "smplh", "mixamo", "vroid", "vrm1", "ue4", "ue5", "arp", "rigify_def", "beat")


def random_motion(frames: int = 10, seed: int = 1, scale: float = 0.5) -> CanonicalMotion:
    rng = np.random.default_rng(seed)
    root = np.tile([0.0, 0.93, 0.0], (frames, 1)) + rng.normal(0, 0.03, (frames, 3))
    return CanonicalMotion(axis_angle_to_quat(rng.normal(0, scale, (frames, NUM_JOINTS, 3))), root)


def world_errors(spec, rig: RigRest, bone_map, motion: CanonicalMotion) -> np.ndarray:
    """Degrees between each mapped bone's world direction (plain hierarchy) and rigspecs' expectation."""
    result = retarget(motion, rig, bone_map)
    dirs = world_bone_directions(rig, result.rotations)
    world = rig.world[:3, :3]
    joints = list(bone_map.joints)
    got = dirs[:, [rig.index[bone_map.joints[j]] for j in joints]] @ world.T
    got /= np.linalg.norm(got, axis=-1, keepdims=True)
    pelvis = world @ rig.rotations[rig.index[bone_map.joints["pelvis"]]][:, 1]
    want = rs.expected_world_directions(motion, joints, spec.facing, pelvis / np.linalg.norm(pelvis))
    return np.degrees(np.arccos(np.clip((got * want).sum(-1), -1.0, 1.0)))


def _variant(spec, variant: str):
    if variant == "fbx":
        return rs.fbx_units(spec)
    if variant == "turned":
        return rs.turned(spec, 135.0, scale=0.01)
    return spec


@pytest.mark.parametrize("variant", ["plain", "fbx", "turned"])
@pytest.mark.parametrize("a_pose", [0.0, 45.0])
@pytest.mark.parametrize("name", RIGS)
def test_every_mapped_bone_follows_the_motion_on_every_preset_rig(name, a_pose, variant):
    spec = _variant(rs.SPECS[name](a_pose=a_pose), variant)
    rig = rs.to_rig_rest(spec, roll_seed=RIGS.index(name))
    bone_map = detect_bone_map(rig)
    errors = world_errors(spec, rig, bone_map, random_motion())
    assert errors.max() < 0.01, f"{name}: worst {errors.max():.3f} deg"


@pytest.mark.parametrize("name", ["mixamo", "ue5", "rigify_def", "beat"])
def test_scrambled_names_mapped_by_topology_follow_the_motion(name):
    spec = rs.renamed(rs.SPECS[name](a_pose=30.0), seed=3)
    rig = rs.to_rig_rest(spec, roll_seed=4)
    bone_map = detect_bone_map(rig)
    assert bone_map.method == "topology"
    assert world_errors(spec, rig, bone_map, random_motion()).max() < 0.01


@pytest.mark.parametrize(("drop", "spanned"), [
    ({"mixamorig:Spine1"}, {"spine1": "spine3"}),  # one spine bone fewer: spine1 aims at the chest
    ({"mixamorig:Spine", "mixamorig:Spine1"}, {}),  # only the chest: it spans nothing below it
    ({"mixamorig:Neck"}, {"spine3": "head"}),
    ({"mixamorig:LeftShoulder", "mixamorig:RightShoulder"}, {}),
    ({"mixamorig:LeftToeBase", "mixamorig:Spine2"}, {"spine2": "neck"}),
])
def test_missing_joints_are_spanned_so_the_chain_end_still_follows(drop, spanned):
    spec = rs.without(rs.mixamo(a_pose=20.0), drop)
    rig = rs.to_rig_rest(spec, roll_seed=2)
    bone_map = detect_bone_map(rig)
    spans = {JOINT_NAMES[j]: JOINT_NAMES[k] for j, k in span_targets(bone_map.joints).items()}
    assert spans == spanned
    assert world_errors(spec, rig, bone_map, random_motion()).max() < 0.01


def test_a_spanning_bone_lands_the_next_joint_where_the_canonical_motion_puts_it():
    """With spine2 missing, the chest joint's position relative to the hips follows the canonical one (up to
    the rig's own bone lengths), which a bone pointing along canonical spine1 alone would not."""
    spec = rs.without(rs.mixamo(), {"mixamorig:Spine1"})
    rig = rs.to_rig_rest(spec, roll_seed=0)
    motion = random_motion(seed=5, scale=0.4)
    result = retarget(motion, rig, detect_bone_map(rig))
    dirs = world_bone_directions(rig, result.rotations)[:, rig.index["mixamorig:Spine"]]
    _, pos = forward_kinematics(motion.rotations, motion.root)
    span = pos[:, JOINT_NAMES.index("spine3")] - pos[:, JOINT_NAMES.index("spine1")]
    span = span / np.linalg.norm(span, axis=-1, keepdims=True) @ rs.CANONICAL_TO_BLENDER.T
    assert np.degrees(np.arccos(np.clip((dirs * span).sum(-1), -1, 1))).max() < 0.01


def test_bones_between_a_mapped_bone_and_its_mapped_parent_follow_rigidly():
    """Extra bones in chains (UE5's spine_02/04 and neck_02, Rigify's DEF segments, BEAT's Spine2 and Neck1,
    metacarpals) carry no keys; the next mapped bone is solved through them."""
    for name in ("ue5", "rigify_def", "beat"):
        spec = rs.SPECS[name]()
        rig = rs.to_rig_rest(spec, roll_seed=9)
        bone_map = detect_bone_map(rig)
        result = retarget(random_motion(), rig, bone_map)
        extra = set(rig.names) - set(bone_map.joints.values())
        assert not extra & set(result.rotations)
        assert world_errors(spec, rig, bone_map, random_motion()).max() < 0.01


def test_a_thigh_hanging_from_the_spine_is_solved_relative_to_the_spine():
    """Legs parented to the first spine bone (3ds Max Biped style): the thigh's driver is the rig's own mapped
    parent, not the canonical pelvis."""
    spec = rs.mixamo()
    for b in spec.bones:
        if b.name in ("mixamorig:LeftUpLeg", "mixamorig:RightUpLeg"):
            b.parent = "mixamorig:Spine"
    rig = rs.to_rig_rest(spec, roll_seed=1)
    assert world_errors(spec, rig, detect_bone_map(rig), random_motion()).max() < 0.01


def test_a_bone_that_does_not_inherit_rotation_is_solved_from_its_rest_frame():
    spec = rs.smplx()
    rig = rs.to_rig_rest(spec, roll_seed=3)
    for name in ("left_elbow", "head"):
        rig.inherit_rotation[rig.index[name]] = False  # type: ignore[index]
    assert world_errors(spec, rig, detect_bone_map(rig), random_motion()).max() < 0.01


def test_a_constrained_parent_makes_the_canonical_parent_the_driver():
    """A chain whose parent is held by constraints (Rigify's MCH bones) is assumed to carry the bone of the
    mapped canonical parent, as at rest: the basis is taken relative to that bone."""
    spec = rs.mixamo()
    spec.bones.insert(0, rs.BoneSpec("MCH-arm_parent.L", spec.bone("mixamorig:LeftArm").head,
                                     spec.bone("mixamorig:LeftArm").head + [0, 0, 0.05], None))
    spec.bone("mixamorig:LeftArm").parent = "MCH-arm_parent.L"
    rig = rs.to_rig_rest(spec, roll_seed=None)
    rig.constrained[rig.index["MCH-arm_parent.L"]] = True  # type: ignore[index]
    motion = random_motion()
    q = retarget(motion, rig, detect_bone_map(rig)).rotations["mixamorig:LeftArm"]
    # The same keys as when LeftShoulder (the collar) is the arm's parent.
    plain = rs.to_rig_rest(rs.mixamo(), roll_seed=None)
    q_plain = retarget(motion, plain, detect_bone_map(plain)).rotations["mixamorig:LeftArm"]
    assert np.allclose(q, q_plain, atol=1e-9)
    # Without the constraint, the rest-static MCH parent would be the frame instead.
    rig.constrained[rig.index["MCH-arm_parent.L"]] = False  # type: ignore[index]
    q_static = retarget(motion, rig, detect_bone_map(rig)).rotations["mixamorig:LeftArm"]
    assert not np.allclose(q_static, q_plain, atol=1e-3)


def test_root_motion_follows_the_rig_size_and_its_up_axis_and_can_be_off():
    motion = CanonicalMotion.rest(3)
    motion.root[:, 2] += np.array([0.0, 0.1, 0.2])  # 20 cm forward (canonical +Z)
    metres = rs.to_rig_rest(rs.smplx(), roll_seed=1)
    cm_y_up = rs.to_rig_rest(rs.fbx_units(rs.smplx()), roll_seed=1)  # Y-up data in centimetres
    loc_m = retarget(motion, metres, detect_bone_map(metres)).root_location
    loc_cm = retarget(motion, cm_y_up, detect_bone_map(cm_y_up)).root_location
    assert loc_m is not None and loc_cm is not None
    pelvis_m = metres.rotations[metres.index["pelvis"]] @ loc_m[2]
    pelvis_cm = cm_y_up.world[:3, :3] @ cm_y_up.rotations[cm_y_up.index["pelvis"]] @ loc_cm[2]
    assert np.allclose(pelvis_cm, pelvis_m, atol=1e-6)  # the same world motion
    assert pelvis_m[1] < -0.15 and abs(pelvis_m[0]) < 1e-6  # forward is -Y in Blender
    bone_map = detect_bone_map(metres)
    bone_map.root_motion = False
    off = retarget(motion, metres, bone_map)
    assert off.root_location is None and off.root_bone is None
    assert retarget(motion, metres, bone_map, root_motion=True).root_location is not None


def test_manual_maps_retarget_like_detected_ones():
    spec = rs.vroid(a_pose=35.0)
    rig = rs.to_rig_rest(spec, roll_seed=8)
    manual = manual_bone_map({j: b for j, b in spec.expected.items() if "thumb" not in j}, rig.names)
    assert world_errors(spec, rig, manual, random_motion()).max() < 0.01


@pytest.mark.parametrize("mode", [*EULER_ORDERS, "AXIS_ANGLE", "QUATERNION"])
def test_the_solved_rotations_survive_every_rotation_mode_and_stay_continuous(mode):
    spec = rs.unreal(5, 40.0)
    rig = rs.to_rig_rest(spec, roll_seed=5)
    t = np.linspace(0, 1, 120)[:, None, None]
    aa = np.zeros((120, NUM_JOINTS, 3))
    aa[:, :, 2] = 2.5 * np.sin(2 * np.pi * t[:, :, 0])  # large swings about one axis, out and back
    aa[:, :, 0] = 1.2 * np.cos(3 * np.pi * t[:, :, 0])
    motion = CanonicalMotion(axis_angle_to_quat(aa), np.tile([0, 0.93, 0], (120, 1)))
    result = retarget(motion, rig, detect_bone_map(rig))
    for quats in result.rotations.values():
        assert (np.sum(quats[1:] * quats[:-1], -1) > 0).all()  # one hemisphere from frame to frame
        prop, values = rotation_channels(quats, mode)
        if mode in EULER_ORDERS:
            back = euler_to_matrix(values, mode)
        elif mode == "AXIS_ANGLE":
            back = quat_to_matrix(axis_angle_to_quat(values[:, :1] * values[:, 1:]))
        else:
            back = quat_to_matrix(values)
        assert np.allclose(back, quat_to_matrix(quats), atol=1e-6), prop
        if mode in EULER_ORDERS:  # no wrap by a whole turn and no branch flip between frames
            assert np.abs(np.diff(values, axis=0)).max() < np.pi


def test_primary_children_define_the_spans():
    assert span_targets({"pelvis": "a", "spine1": "b", "neck": "c", "head": "d"}) == {
        JOINT_NAMES.index("spine1"): JOINT_NAMES.index("neck")}
    assert PRIMARY_CHILD[JOINT_NAMES.index("left_wrist")] == JOINT_NAMES.index("left_middle1")
