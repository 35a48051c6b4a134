"""Bone-map detection without Blender: fuzzy names, every preset, topology, reports, manual maps and presets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.errors import RigError
from gestura.inference.skeleton import JOINT_NAMES
from gestura.retarget.bonemaps import PRESETS, BoneMap, missing_required
from gestura.retarget.detect import (
    NameIndex,
    best_guess,
    bone_key,
    common_prefix,
    detect_bone_map,
    detect_topology,
    manual_bone_map,
    mapping_from_json,
    mapping_to_json,
    match_preset,
    mirror_bone_name,
    name_tokens,
    rank_presets,
)

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


# --- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), [
    ("mixamorig:LeftHandIndex1", ("L", "handindex1")),
    ("mixamorig1:LeftHandIndex1", ("L", "handindex1")),
    ("MIXAMORIG_LEFTHANDINDEX1", ("L", "handindex1")),
    ("LeftHandIndex1", ("L", "handindex1")),
    ("Left_Hand_Index_01", ("L", "handindex1")),
    ("upper_arm_fk.L", ("L", "upperarmfk")),
    ("DEF-upper_arm.L.001", ("L", "defupperarm1")),
    ("J_Bip_L_UpperArm", ("L", "jbipupperarm")),
    ("leftUpperArm", ("L", "upperarm")),
    ("upper_arm.L", ("L", "upperarm")),
    ("upperarm_l", ("L", "upperarm")),
    ("c_arm_fk.r", ("R", "carmfk")),
    ("R_Elbow", ("R", "elbow")),
    ("right_elbow", ("R", "elbow")),
    ("spine_03", ("", "spine3")),
    ("Spine3", ("", "spine3")),
    ("HandRight", ("R", "hand")),
])
def test_bone_keys_ignore_case_separators_sides_and_namespaces(name, key):
    assert bone_key(name) == key


def test_tokens_split_camel_case_digits_and_fused_sides():
    assert name_tokens("mixamorig:LeftForeArm") == ["left", "fore", "arm"]
    assert name_tokens("index_metacarpal_l") == ["index", "metacarpal", "l"]
    assert name_tokens("Bip01 L UpperArm") == ["bip", "1", "l", "upper", "arm"]
    assert name_tokens("bright") == ["bright"]  # not "b" + "right"


def test_a_prefix_shared_by_most_bones_is_tried_without():
    names = ["m_avg_Pelvis", "m_avg_L_Hip", "m_avg_R_Hip", "m_avg_Spine1", "root"]
    assert common_prefix(names) == ("m", "avg")
    index = NameIndex(names)
    assert index.find("L_Hip") == ("m_avg_L_Hip", False)
    assert index.find("left_hip")[0] == "m_avg_L_Hip"


@pytest.mark.parametrize(("name", "other"), [
    ("hand.L", "hand.R"), ("DEF-upper_arm.L.001", "DEF-upper_arm.R.001"), ("J_Bip_L_Hand", "J_Bip_R_Hand"),
    ("mixamorig:LeftArm", "mixamorig:RightArm"), ("upperarm_l", "upperarm_r"), ("leftThumbProximal",
    "rightThumbProximal"), ("c_index1.l", "c_index1.r"), ("L_Wrist", "R_Wrist"), ("Hand_Left", "Hand_Right"),
])
def test_mirror_names(name, other):
    assert mirror_bone_name(name, [name, other, "spine", "Bone.L"]) == other


def test_mirror_falls_back_to_keys_and_gives_none_without_a_match():
    assert mirror_bone_name("LeftHand", ["LeftHand", "hand_r"]) == "hand_r"
    assert mirror_bone_name("LeftHand", ["LeftHand", "Spine"]) is None
    assert mirror_bone_name("Spine", ["Spine"]) is None


# --- presets by name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rig", RIGS)
def test_each_preset_rig_is_recognised_by_names_with_every_joint(rig):
    spec = rs.SPECS[rig]()
    bone_map = detect_bone_map([b.name for b in spec.bones])
    assert bone_map.preset == spec.preset
    assert bone_map.joints == spec.expected
    assert bone_map.confidence > 0.95


def test_presets_cover_every_rig_family_the_issue_names():
    labels = " | ".join(p.label for p in PRESETS.values())
    for family in ("Rigify (FK", "DEF-", "Mixamo", "VRoid", "VRM 1.0", "VRM 0.x humanoid", "SMPL-X", "SMPL-H",
                   "UE5", "UE4", "Auto-Rig Pro (controls)", "Auto-Rig Pro (deform", "BEAT / ZEGGS"):
        assert family in labels
    for preset in PRESETS.values():
        assert set(preset.joints) <= set(JOINT_NAMES)
        assert len(set(preset.joints.values())) == len(preset.joints), preset.name
        assert not missing_required(preset.joints), preset.name


@pytest.mark.parametrize(("names", "preset"), [
    (list(PRESETS["ue4"].joints.values()), "ue4"),
    (list(PRESETS["ue5"].joints.values()) + ["spine_02", "spine_04", "neck_02"], "ue5"),
    (list(PRESETS["mixamo"].joints.values()), "mixamo"),
    ([n.replace("mixamorig:", "") for n in PRESETS["mixamo"].joints.values()], "mixamo_no_prefix"),
    (list(PRESETS["beat"].joints.values()) + ["Spine2", "Neck1", "HeadEnd"], "beat"),
    (list(PRESETS["vrm0"].joints.values()), "vrm0"),
    (list(PRESETS["vrm1"].joints.values()), "vrm1"),
    (list(PRESETS["smplh"].joints.values()), "smplh"),
    (list(PRESETS["metarig"].joints.values()) + ["spine.005"], "metarig"),
    (list(PRESETS["arp_deform"].joints.values()), "arp_deform"),
])
def test_presets_that_share_names_are_told_apart(names, preset):
    assert rank_presets(names)[0].preset.name == preset


def test_controls_win_over_constrained_deform_bones_of_the_same_rig():
    names = list(PRESETS["rigify"].joints.values()) + list(PRESETS["rigify_def"].joints.values())
    constrained = {n: n.startswith("DEF-") for n in names}
    assert rank_presets(names, constrained)[0].preset.name == "rigify"
    spec = rs.auto_rig_pro()
    rig = rs.to_rig_rest(spec)
    assert detect_bone_map(rig).preset == "arp"  # its deform bones copy the controls
    assert detect_bone_map(rig).extra_keys == {f"c_{part}_ik.{s}": {"ik_fk_switch": 1.0}
                                              for part in ("hand", "foot") for s in ("l", "r")}


def test_vrm_thumbs_follow_each_versions_naming():
    vrm0 = match_preset(PRESETS["vrm0"], NameIndex(list(PRESETS["vrm0"].joints.values())))
    assert vrm0.joints["left_thumb1"] == "leftThumbProximal"
    vrm1 = match_preset(PRESETS["vrm1"], NameIndex(list(PRESETS["vrm1"].joints.values())))
    assert vrm1.joints["left_thumb1"] == "leftThumbMetacarpal"
    assert vrm1.joints["left_thumb2"] == "leftThumbProximal"
    addon = ["hips", "spine", "chest", "neck", "head"] + [
        f"{b}.{s}" for s in "LR" for b in ("shoulder", "upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg",
                                          "foot", "toes", "thumb_proximal", "thumb_intermediate", "thumb_distal",
                                          "index_proximal", "index_intermediate", "index_distal")]
    bone_map = detect_bone_map(addon)  # the VRM add-on's "Add VRM Humanoid" armature
    assert bone_map.preset == "vrm0" and bone_map.joints["left_thumb2"] == "thumb_intermediate.L"
    assert bone_map.joints["left_elbow"] == "lower_arm.L"


# --- reports ------------------------------------------------------------------------------------------------


def test_the_report_groups_missing_joints_by_what_they_do():
    bone_map = BoneMap("mixamo", {}, 0.5, ["spine2", "left_index1", "left_index2", "left_knee"])
    text = bone_map.describe()
    assert text.index("spine and collars (spine2") < text.index("hips and legs") < text.index("left fingers")
    assert "left_index1-2: the fingers stay still" in text


def test_rigify_fk_does_not_report_joints_it_leaves_out_on_purpose():
    bone_map = detect_bone_map(list(PRESETS["rigify"].joints.values()))
    assert "spine1" in bone_map.unmapped and "spine1" not in bone_map.describe()


def test_an_unknown_rig_reports_the_missing_joints_and_why_structure_failed():
    spec = rs.bust(seed=1)
    rig = rs.to_rig_rest(spec)
    with pytest.raises(RigError) as err:
        detect_bone_map(rig)
    text = str(err.value)
    assert "no bones found for pelvis, neck, head, left_shoulder, right_shoulder" in text
    assert "No bone name matched any of them" in text
    assert "no hips" in text and "Map the bones by hand" in text
    with pytest.raises(RigError, match="no bones found for pelvis"):
        detect_bone_map([b.name for b in spec.bones])  # names only: no structure to try


# --- topology -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rig", RIGS)
@pytest.mark.parametrize("a_pose", [0.0, 40.0])
def test_topology_maps_every_preset_rig_with_its_names_scrambled(rig, a_pose):
    spec = rs.renamed(rs.SPECS[rig](a_pose=a_pose), seed=5)
    result = detect_topology(rs.to_rig_rest(spec))
    assert not missing_required(result.joints), result.problems
    # Arms, hands, fingers, head and legs exactly as the preset maps them; where the spine and the feet
    # have more bones than the canonical skeleton, any of them is a fair choice.
    loose = {"spine1", "spine2", "spine3", "left_foot", "right_foot"}
    assert {j: b for j, b in result.joints.items() if j not in loose} == {
        j: b for j, b in spec.expected.items() if j not in loose}
    assert result.confidence > 0.8


def test_topology_tells_left_from_right_by_the_feet_when_names_do_not_say():
    spec = rs.renamed(rs.turned(rs.mixamo(), 90.0), seed=2)  # facing +X in the world
    result = detect_topology(rs.to_rig_rest(spec))
    assert result.facing_from == "feet"
    assert result.joints["left_wrist"] == spec.expected["left_wrist"]


def test_topology_handles_fbx_units_and_missing_collars_fingers_and_spine_bones():
    spec = rs.mixamo()
    drop = {"mixamorig:LeftShoulder", "mixamorig:RightShoulder", "mixamorig:Spine1"}
    drop |= {b.name for b in spec.bones if "Hand" in b.name and b.name[-1] in "1234" and "Index" not in b.name}
    spec = rs.renamed(rs.fbx_units(rs.without(spec, drop)), seed=8)
    result = detect_topology(rs.to_rig_rest(spec))
    for joint in ("left_shoulder", "left_elbow", "right_wrist", "left_index1", "left_index3", "head"):
        assert result.joints[joint] == spec.expected[joint], joint
    assert "left_collar" not in result.joints and "left_thumb1" not in result.joints


def test_names_are_completed_by_topology_when_they_agree():
    spec = rs.mixamo()
    for b in spec.bones:  # fingers renamed the way some exporters spell them
        if "HandPinky" in b.name:
            old = b.name
            b.name = old.replace("HandPinky", "HandLittleFinger")
            for other in spec.bones:
                if other.parent == old:
                    other.parent = b.name
    bone_map = detect_bone_map(rs.to_rig_rest(spec))
    assert bone_map.method == "names+topology"
    assert bone_map.joints["left_pinky2"] == "mixamorig:LeftHandLittleFinger2"
    assert "found by topology" in bone_map.describe()


def test_best_guess_gives_a_partial_table_to_finish_by_hand():
    spec = rs.bust(seed=4)
    guess = best_guess(rs.to_rig_rest(spec))
    assert isinstance(guess, dict)
    assert all(j in JOINT_NAMES for j in guess)


# --- manual maps and presets ----------------------------------------------------------------------------------


def test_manual_map_checks_bones_and_required_joints():
    spec = rs.vroid()
    names = [b.name for b in spec.bones]
    bone_map = manual_bone_map(spec.expected, names, root_motion=False)
    assert bone_map.method == "manual" and bone_map.joints == spec.expected and not bone_map.root_motion
    with pytest.raises(RigError, match="not in the rig"):
        manual_bone_map({**spec.expected, "head": "Nope"}, names)
    with pytest.raises(RigError, match="used for both"):
        manual_bone_map({**spec.expected, "neck": spec.expected["head"]}, names)
    with pytest.raises(RigError, match="no bones set for left_wrist"):
        manual_bone_map({j: b for j, b in spec.expected.items() if j != "left_wrist"}, names)
    with pytest.raises(RigError, match="unknown canonical joints"):
        manual_bone_map({**spec.expected, "tail1": "J_Bip_C_Hips"}, names)
    # Of neck and head, one is enough.
    assert "neck" not in manual_bone_map({j: b for j, b in spec.expected.items() if j != "neck"}, names).joints


def test_manual_map_keeps_a_known_rigs_switch_keys():
    names = list(PRESETS["rigify"].joints.values()) + ["upper_arm_parent.L", "torso"]
    bone_map = manual_bone_map(dict(PRESETS["rigify"].joints), names)
    assert bone_map.extra_keys["upper_arm_parent.L"]["IK_FK"] == 1.0


def test_mapping_presets_round_trip_as_json():
    joints = dict(PRESETS["ue5"].joints)
    name, back, root_motion = mapping_from_json(mapping_to_json(joints, "manny", root_motion=False))
    assert (name, back, root_motion) == ("manny", joints, False)
    for bad in ("{", "[]", '{"format": "other"}', '{"format": "gestura-bone-map", "joints": {"tail": "x"}}'):
        with pytest.raises(ValueError):
            mapping_from_json(bad)


def test_detection_is_fast_on_a_big_rig():
    import time

    spec = rs.unreal(5)
    rig = rs.to_rig_rest(rs.renamed(spec, 1))
    t0 = time.perf_counter()
    detect_bone_map(rig)
    assert time.perf_counter() - t0 < 2.0
    assert np.isfinite(rig.matrices).all()
