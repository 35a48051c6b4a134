"""Bone-name presets for common rigs, and the bone map (canonical joint -> rig bone) with its report.

A bone map sends canonical SMPL-X joint names to the rig's bone names. Canonical joints a rig lacks (a
shorter spine, no collars, no fingers) are simply absent: the solver gives each mapped bone its canonical
*global* direction, and a mapped bone whose canonical child is missing aims at the next mapped joint down
the chain, so the missing joint's rotation is carried by the mapped ones.

Detection (by names, fuzzy, and by topology) lives in ``detect.py``; ``detect_bone_map`` here is its entry
point, kept for callers that import it from this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..inference.skeleton import JOINT_NAMES, PART_OF_JOINT

_FINGERS = ("index", "middle", "ring", "pinky", "thumb")
_SIDES = (("left", "L", "Left", "l"), ("right", "R", "Right", "r"))
_LIMBS = ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "foot")


def _smplx() -> dict[str, str]:
    return {name: name for name in JOINT_NAMES}


def _smplh() -> dict[str, str]:
    """SMPL / SMPL-H FBX naming (Pelvis, L_Hip, ..., L_Index1); an m_avg_ / f_avg_ prefix is stripped by
    the fuzzy matcher as a prefix common to all bones."""
    m = {"pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck",
         "head": "Head"}
    for side, short, _cap, _low in _SIDES:
        for limb in _LIMBS:
            m[f"{side}_{limb}"] = f"{short}_{limb.capitalize()}"
        for finger in _FINGERS:
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"{short}_{finger.capitalize()}{seg}"
    return m


def _mixamo(prefix: str = "mixamorig:") -> dict[str, str]:
    m = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head"}
    for side, _short, cap, _low in _SIDES:
        m.update({
            f"{side}_collar": f"{cap}Shoulder", f"{side}_shoulder": f"{cap}Arm",
            f"{side}_elbow": f"{cap}ForeArm", f"{side}_wrist": f"{cap}Hand",
            f"{side}_hip": f"{cap}UpLeg", f"{side}_knee": f"{cap}Leg",
            f"{side}_ankle": f"{cap}Foot", f"{side}_foot": f"{cap}ToeBase",
        })
        for finger in _FINGERS:
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"{cap}Hand{finger.capitalize()}{seg}"
    return {k: prefix + v for k, v in m.items()}


def _beat() -> dict[str, str]:
    """The BEAT / ZEGGS BVH skeleton as Blender's BVH importer names its bones: Mixamo-like names with a
    fourth spine bone (Spine3, where the arms hang) and Neck1. Spine2 and Neck1 stay unmapped and follow
    their parents."""
    m = _mixamo("")
    m["spine3"] = "Spine3"
    return m


def _rigify_fk() -> dict[str, str]:
    # Rigify's upper body FK chain is torso -> spine_fk.002 -> spine_fk.003 -> neck; spine_fk.001 bends the
    # hips region downwards, so canonical spine1 stays unmapped and spine2 carries its rotation.
    m = {"pelvis": "torso", "spine2": "spine_fk.002", "spine3": "spine_fk.003", "neck": "neck", "head": "head"}
    for side, short, _cap, _low in _SIDES:
        m.update({
            f"{side}_collar": f"shoulder.{short}", f"{side}_shoulder": f"upper_arm_fk.{short}",
            f"{side}_elbow": f"forearm_fk.{short}", f"{side}_wrist": f"hand_fk.{short}",
            f"{side}_hip": f"thigh_fk.{short}", f"{side}_knee": f"shin_fk.{short}",
            f"{side}_ankle": f"foot_fk.{short}",
        })
        for finger in ("index", "middle", "ring", "pinky"):
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"f_{finger}.0{seg}.{short}"
        for seg in (1, 2, 3):
            m[f"{side}_thumb{seg}"] = f"thumb.0{seg}.{short}"
    return m


def _metarig(prefix: str = "") -> dict[str, str]:
    """Blender's human metarig names (also Rigify's DEF- deform bones with prefix "DEF-"). The spine is
    spine (hips) .001 .002 .003 (chest) .004 .005 (neck) .006 (head); .005 stays unmapped. The upper arm,
    forearm, thigh and shin are split in two B-bone segments in Rigify's DEF bones (upper_arm.L.001, ...),
    which follow the first segment."""
    m = {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
         "neck": "spine.004", "head": "spine.006"}
    for side, short, _cap, _low in _SIDES:
        m.update({
            f"{side}_collar": f"shoulder.{short}", f"{side}_shoulder": f"upper_arm.{short}",
            f"{side}_elbow": f"forearm.{short}", f"{side}_wrist": f"hand.{short}",
            f"{side}_hip": f"thigh.{short}", f"{side}_knee": f"shin.{short}",
            f"{side}_ankle": f"foot.{short}", f"{side}_foot": f"toe.{short}",
        })
        for finger in ("index", "middle", "ring", "pinky"):
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"f_{finger}.0{seg}.{short}"
        for seg in (1, 2, 3):
            m[f"{side}_thumb{seg}"] = f"thumb.0{seg}.{short}"
    return {k: prefix + v for k, v in m.items()}


def _vroid() -> dict[str, str]:
    """VRoid Studio models (VRM 0.x and 1.0 exports) as the VRM add-on imports them: J_Bip_C_Hips, ..."""
    m = {"pelvis": "J_Bip_C_Hips", "spine1": "J_Bip_C_Spine", "spine2": "J_Bip_C_Chest",
         "spine3": "J_Bip_C_UpperChest", "neck": "J_Bip_C_Neck", "head": "J_Bip_C_Head"}
    for side, short, _cap, _low in _SIDES:
        p = f"J_Bip_{short}_"
        m.update({
            f"{side}_collar": p + "Shoulder", f"{side}_shoulder": p + "UpperArm", f"{side}_elbow": p + "LowerArm",
            f"{side}_wrist": p + "Hand", f"{side}_hip": p + "UpperLeg", f"{side}_knee": p + "LowerLeg",
            f"{side}_ankle": p + "Foot", f"{side}_foot": p + "ToeBase",
        })
        for finger, vrm in (("index", "Index"), ("middle", "Middle"), ("ring", "Ring"), ("pinky", "Little"),
                            ("thumb", "Thumb")):
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"{p}{vrm}{seg}"
    return m


def _vrm_humanoid(version: int) -> dict[str, str]:
    """VRM humanoid bone names. 1.0: leftUpperArm, ..., thumb Metacarpal/Proximal/Distal. 0.x (also what the
    VRM add-on's "Add VRM Humanoid" names its bones, upper_arm.L, ...): thumb Proximal/Intermediate/Distal."""
    m = {"pelvis": "hips", "spine1": "spine", "spine2": "chest", "spine3": "upperChest", "neck": "neck",
         "head": "head"}
    segs = ("Proximal", "Intermediate", "Distal")
    thumb = ("Metacarpal", "Proximal", "Distal") if version == 1 else segs
    for side, _short, _cap, low in _SIDES:
        s = "left" if low == "l" else "right"
        m.update({
            f"{side}_collar": f"{s}Shoulder", f"{side}_shoulder": f"{s}UpperArm", f"{side}_elbow": f"{s}LowerArm",
            f"{side}_wrist": f"{s}Hand", f"{side}_hip": f"{s}UpperLeg", f"{side}_knee": f"{s}LowerLeg",
            f"{side}_ankle": f"{s}Foot", f"{side}_foot": f"{s}Toes",
        })
        for finger, vrm in (("index", "Index"), ("middle", "Middle"), ("ring", "Ring"), ("pinky", "Little")):
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"{s}{vrm}{segs[seg - 1]}"
        for seg in (1, 2, 3):
            m[f"{side}_thumb{seg}"] = f"{s}Thumb{thumb[seg - 1]}"
    return m


def _unreal(version: int) -> dict[str, str]:
    """Unreal mannequin. UE4: spine_01..03, neck_01. UE5 (Manny/Quinn): spine_01..05, neck_01/02, finger
    metacarpals; spine_02, spine_04, neck_02, the metacarpals and every twist bone stay unmapped."""
    spine = ("spine_01", "spine_02", "spine_03") if version == 4 else ("spine_01", "spine_03", "spine_05")
    m = {"pelvis": "pelvis", "spine1": spine[0], "spine2": spine[1], "spine3": spine[2], "neck": "neck_01",
         "head": "head"}
    for side, _short, _cap, low in _SIDES:
        m.update({
            f"{side}_collar": f"clavicle_{low}", f"{side}_shoulder": f"upperarm_{low}",
            f"{side}_elbow": f"lowerarm_{low}", f"{side}_wrist": f"hand_{low}", f"{side}_hip": f"thigh_{low}",
            f"{side}_knee": f"calf_{low}", f"{side}_ankle": f"foot_{low}", f"{side}_foot": f"ball_{low}",
        })
        for finger in _FINGERS:
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"{finger}_0{seg}_{low}"
    return m


def _arp(controls: bool) -> dict[str, str]:
    """Auto-Rig Pro. Controls (c_ prefix, FK chains): c_root_master.x, c_spine_01.x, c_arm_fk.l, ... Deform
    bones: root.x, spine_01.x, arm_stretch.l, forearm_stretch.l, hand.l, thigh_stretch.l, leg_stretch.l,
    foot.l, toes_01.l (the finger controls c_index1.l ... deform themselves). The default human has two or
    three spine bones; a missing spine_03 leaves canonical spine3 to the mapped spine bones."""
    if controls:
        m = {"pelvis": "c_root_master.x", "spine1": "c_spine_01.x", "spine2": "c_spine_02.x",
             "spine3": "c_spine_03.x", "neck": "c_neck.x", "head": "c_head.x"}
        limbs = {"collar": "c_shoulder", "shoulder": "c_arm_fk", "elbow": "c_forearm_fk", "wrist": "c_hand_fk",
                 "hip": "c_thigh_fk", "knee": "c_leg_fk", "ankle": "c_foot_fk", "foot": "c_toes_fk"}
    else:
        m = {"pelvis": "root.x", "spine1": "spine_01.x", "spine2": "spine_02.x", "spine3": "spine_03.x",
             "neck": "neck.x", "head": "head.x"}
        limbs = {"collar": "shoulder", "shoulder": "arm_stretch", "elbow": "forearm_stretch", "wrist": "hand",
                 "hip": "thigh_stretch", "knee": "leg_stretch", "ankle": "foot", "foot": "toes_01"}
    for side, _short, _cap, low in _SIDES:
        for limb, bone in limbs.items():
            m[f"{side}_{limb}"] = f"{bone}.{low}"
        for finger in _FINGERS:
            for seg in (1, 2, 3):
                m[f"{side}_{finger}{seg}"] = f"c_{finger}{seg}.{low}"
    return m


def _rigify_extra_keys() -> dict[str, dict[str, float]]:
    """Rigify switches keyed with the motion: FK arms and legs, and neck and head that follow the
    spine rigidly (by default they partly keep their world orientation, which would bend the motion)."""
    keys: dict[str, dict[str, float]] = {"torso": {"neck_follow": 1.0, "head_follow": 1.0}}
    for short in ("L", "R"):
        # IK_FK 1 = FK; FK_limb_follow 0 = the FK chain turns with its parent (1 keeps its world rotation).
        keys[f"upper_arm_parent.{short}"] = {"IK_FK": 1.0, "FK_limb_follow": 0.0}
        keys[f"thigh_parent.{short}"] = {"IK_FK": 1.0, "FK_limb_follow": 0.0}
    return keys


def _arp_extra_keys() -> dict[str, dict[str, float]]:
    """Auto-Rig Pro's IK/FK switches to FK (ik_fk_switch 1 = FK), on the IK controls (older versions) or
    the c_ikfk_* switch bones (newer ones); only bones the rig has are keyed."""
    keys: dict[str, dict[str, float]] = {}
    for low in ("l", "r"):
        for bone in (f"c_hand_ik.{low}", f"c_foot_ik.{low}", f"c_ikfk_arm.{low}", f"c_ikfk_leg.{low}"):
            keys[bone] = {"ik_fk_switch": 1.0}
    return keys


@dataclass(frozen=True)
class BoneMapPreset:
    name: str
    label: str
    joints: dict[str, str]
    # Custom properties to key alongside the motion: bone -> {property: value}.
    extra_keys: dict[str, dict[str, float]] = field(default_factory=dict)
    # Bones that identify this preset among presets sharing joint names (BEAT's Spine3 vs Mixamo).
    markers: tuple[str, ...] = ()
    # Canonical joints the preset leaves out on purpose (they are not reported as missing on such rigs,
    # and topology does not fill them).
    omits: frozenset[str] = frozenset()
    # Among equally good matches, the higher priority wins (controls before deform bones).
    priority: int = 0


PRESETS: dict[str, BoneMapPreset] = {
    p.name: p
    for p in (
        BoneMapPreset("rigify", "Rigify (FK controls)", _rigify_fk(), _rigify_extra_keys(),
                      markers=("torso", "MCH-torso.parent", "upper_arm_parent.L", "spine_fk.001"),
                      omits=frozenset({"spine1", "left_foot", "right_foot"}), priority=2),
        BoneMapPreset("rigify_def", "Rigify (deform bones DEF-)", _metarig("DEF-"),
                      markers=("DEF-spine.005", "DEF-upper_arm.L.001", "DEF-forearm.L.001"), priority=1),
        BoneMapPreset("metarig", "Blender human metarig", _metarig(), markers=("spine.005", "palm.01.L")),
        BoneMapPreset("mixamo", "Mixamo", _mixamo(), markers=("mixamorig:HeadTop_End",)),
        BoneMapPreset("mixamo_no_prefix", "Mixamo (no prefix)", _mixamo(""), markers=("HeadTop_End",)),
        BoneMapPreset("beat", "BEAT / ZEGGS BVH", _beat(), markers=("Spine3", "Neck1", "HeadEnd")),
        BoneMapPreset("smplx", "SMPL-X", _smplx(), markers=("jaw", "left_eye_smplhf", "root")),
        BoneMapPreset("smplh", "SMPL / SMPL-H", _smplh(), markers=("L_Hand", "R_Hand")),
        BoneMapPreset("vroid", "VRM 0.x / VRoid (J_Bip)", _vroid(), markers=("Root", "J_Bip_C_UpperChest")),
        BoneMapPreset("vrm1", "VRM 1.0 humanoid", _vrm_humanoid(1), markers=("leftThumbMetacarpal",)),
        BoneMapPreset("vrm0", "VRM 0.x humanoid", _vrm_humanoid(0), markers=("leftThumbIntermediate",)),
        BoneMapPreset("ue5", "Unreal mannequin (UE5 Manny)", _unreal(5),
                      markers=("spine_04", "spine_05", "neck_02", "index_metacarpal_l", "ik_foot_root")),
        BoneMapPreset("ue4", "Unreal mannequin (UE4)", _unreal(4), markers=("root", "ik_foot_root", "ik_hand_root")),
        BoneMapPreset("arp", "Auto-Rig Pro (controls)", _arp(True), _arp_extra_keys(),
                      markers=("c_traj", "c_root.x", "c_pos"), priority=2),
        BoneMapPreset("arp_deform", "Auto-Rig Pro (deform bones)", _arp(False),
                      markers=("arm_twist.l", "forearm_twist.l", "thigh_twist.l"), priority=1),
    )
}

# Joints without which gestures cannot land: the arms and the chain up to the head.
CORE_JOINTS = (
    "pelvis", "neck", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
# Of neck and head one is enough (the other is carried by it).
EITHER_OF = (("neck", "head"),)

# How much a missing joint matters, by body part (used in scores and the report).
PART_WEIGHT = {"left_arm": 3.0, "right_arm": 3.0, "head": 2.0, "torso": 1.5, "lower_body": 1.0,
               "left_hand": 0.3, "right_hand": 0.3}
PART_LABEL = {"head": "head and neck", "torso": "spine and collars", "left_arm": "left arm",
              "right_arm": "right arm", "left_hand": "left fingers", "right_hand": "right fingers",
              "lower_body": "hips and legs"}
PART_EFFECT = {"head": "the head follows the spine", "torso": "the mapped spine bones carry the bend",
               "left_arm": "gestures cannot land", "right_arm": "gestures cannot land",
               "left_hand": "the fingers stay still", "right_hand": "the fingers stay still",
               "lower_body": "the legs stay at rest"}


def joint_weight(joint: str) -> float:
    if joint == "pelvis":
        return 3.0
    return PART_WEIGHT[PART_OF_JOINT[joint]]


def missing_required(joints: dict[str, str] | set[str]) -> list[str]:
    """Required canonical joints (CORE_JOINTS, of neck/head one is enough) that are not mapped."""
    have = set(joints)
    missing = [j for j in CORE_JOINTS if j not in have]
    for group in EITHER_OF:
        if any(j in have for j in group):
            missing = [j for j in missing if j not in group]
    return missing


@dataclass
class BoneMap:
    preset: str
    joints: dict[str, str]  # canonical joint -> rig bone, only bones the rig has
    confidence: float  # 0..1: weighted share of the preset's joints found (names), or the topology score
    unmapped: list[str]  # canonical joints with no bone
    extra_keys: dict[str, dict[str, float]] = field(default_factory=dict)
    method: str = "names"  # "names", "names+topology", "topology" or "manual"
    notes: list[str] = field(default_factory=list)
    root_motion: bool = True  # key the pelvis bone's location (the canonical root translation)

    @property
    def label(self) -> str:
        if self.preset in PRESETS:
            return PRESETS[self.preset].label
        return {"topology": "Unknown names (mapped by topology)", "manual": "Manual mapping"}.get(
            self.preset, self.preset)

    def unmapped_by_part(self) -> dict[str, list[str]]:
        """Unmapped canonical joints grouped by body part, the parts that matter most first. Joints the
        preset leaves out on purpose are not listed."""
        omits = PRESETS[self.preset].omits if self.preset in PRESETS else frozenset()
        parts: dict[str, list[str]] = {}
        for j in self.unmapped:
            if j not in omits:
                parts.setdefault(PART_OF_JOINT[j], []).append(j)
        return dict(sorted(parts.items(), key=lambda kv: -PART_WEIGHT[kv[0]]))

    def describe(self) -> str:
        text = (f"{self.label}: {len(self.joints)} of {len(JOINT_NAMES)} joints mapped "
                f"({self.confidence:.0%} confidence, {self.method})")
        parts = self.unmapped_by_part()
        if parts:
            text += "; unmapped: " + "; ".join(
                f"{PART_LABEL[p]} ({_compact(js)}: {PART_EFFECT[p]})" for p, js in parts.items())
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _compact(joints: list[str]) -> str:
    """'left_index1, left_index2, left_index3' -> 'left_index1-3'."""
    out: list[str] = []
    groups: dict[str, list[str]] = {}
    for j in joints:
        if j[-1].isdigit():
            groups.setdefault(j[:-1], []).append(j[-1])
        else:
            out.append(j)
    for stem, segs in groups.items():
        out.append(f"{stem}{segs[0]}-{segs[-1]}" if len(segs) > 1 else f"{stem}{segs[0]}")
    return ", ".join(out)


def detect_bone_map(rig: Any, preset: str | None = None) -> BoneMap:
    """The bone map for a rig: a list of bone names (names only) or a RigRest (names and topology).
    Raises RigError with a report of what could not be mapped. See detect.detect_bone_map."""
    from .detect import detect_bone_map as _detect

    return _detect(rig, preset)

