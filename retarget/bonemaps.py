"""Bone-name presets for common rigs and detection of which one a rig follows.

A bone map sends canonical SMPL-X joint names to the rig's bone names. Canonical joints a rig lacks
(a shorter spine, no fingers) are simply absent: the solver gives each mapped bone its canonical
*global* orientation, so a missing parent's rotation is carried by its mapped descendants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..inference.errors import RigError
from ..inference.skeleton import JOINT_NAMES

_FINGERS = ("index", "middle", "ring", "pinky", "thumb")
_SIDES = (("left", "L", "Left"), ("right", "R", "Right"))


def _smplx() -> dict[str, str]:
    return {name: name for name in JOINT_NAMES}


def _mixamo(prefix: str = "mixamorig:") -> dict[str, str]:
    m = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head"}
    for side, _short, cap in _SIDES:
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


def _rigify_fk() -> dict[str, str]:
    # Rigify's upper body FK chain is torso -> spine_fk.002 -> spine_fk.003 -> neck; spine_fk.001 bends the
    # hips region downwards, so canonical spine1 stays unmapped and spine2 carries its rotation.
    m = {"pelvis": "torso", "spine2": "spine_fk.002", "spine3": "spine_fk.003", "neck": "neck", "head": "head"}
    for side, short, _cap in _SIDES:
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


def _rigify_extra_keys() -> dict[str, dict[str, float]]:
    """Rigify switches keyed with the motion: FK arms and legs, and neck and head that follow the
    spine rigidly (by default they partly keep their world orientation, which would bend the motion)."""
    keys: dict[str, dict[str, float]] = {"torso": {"neck_follow": 1.0, "head_follow": 1.0}}
    for short in ("L", "R"):
        # IK_FK 1 = FK; FK_limb_follow 0 = the FK chain turns with its parent (1 keeps its world rotation).
        keys[f"upper_arm_parent.{short}"] = {"IK_FK": 1.0, "FK_limb_follow": 0.0}
        keys[f"thigh_parent.{short}"] = {"IK_FK": 1.0, "FK_limb_follow": 0.0}
    return keys


@dataclass(frozen=True)
class BoneMapPreset:
    name: str
    label: str
    joints: dict[str, str]
    # Custom properties to key alongside the motion: bone -> {property: value}.
    extra_keys: dict[str, dict[str, float]] = field(default_factory=dict)


PRESETS: dict[str, BoneMapPreset] = {
    "rigify": BoneMapPreset("rigify", "Rigify (FK controls)", _rigify_fk(), _rigify_extra_keys()),
    "mixamo": BoneMapPreset("mixamo", "Mixamo", _mixamo()),
    "mixamo_no_prefix": BoneMapPreset("mixamo_no_prefix", "Mixamo (no prefix)", _mixamo("")),
    "smplx": BoneMapPreset("smplx", "SMPL-X", _smplx()),
}

# Joints without which gestures cannot land: the arms and the chain up to the head.
CORE_JOINTS = (
    "pelvis", "neck", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)


@dataclass
class BoneMap:
    preset: str
    joints: dict[str, str]  # canonical joint -> rig bone, only bones the rig has
    confidence: float  # fraction of the preset's joints the rig has
    unmapped: list[str]  # canonical joints with no bone
    extra_keys: dict[str, dict[str, float]] = field(default_factory=dict)

    def describe(self) -> str:
        label = PRESETS[self.preset].label if self.preset in PRESETS else self.preset
        text = f"{label}: {len(self.joints)} of {len(JOINT_NAMES)} joints mapped ({self.confidence:.0%} of the preset)"
        if self.unmapped:
            text += "; unmapped: " + ", ".join(self.unmapped[:12]) + (" ..." if len(self.unmapped) > 12 else "")
        return text


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", name.lower())


def match_preset(preset: BoneMapPreset, bone_names: list[str] | set[str]) -> BoneMap:
    exact = set(bone_names)
    # Tolerate case and separator differences ("mixamorig_LeftArm", "Left_Arm") after an exact miss.
    loose = {_normalise(n): n for n in bone_names}
    joints: dict[str, str] = {}
    for joint, bone in preset.joints.items():
        if bone in exact:
            joints[joint] = bone
        elif _normalise(bone) in loose:
            joints[joint] = loose[_normalise(bone)]
    confidence = len(joints) / max(len(preset.joints), 1)
    unmapped = [j for j in JOINT_NAMES if j not in joints]
    extra = {b: props for b, props in preset.extra_keys.items() if b in exact}
    return BoneMap(preset.name, joints, confidence, unmapped, extra)


def detect_bone_map(bone_names: list[str] | set[str], preset: str | None = None) -> BoneMap:
    """The best-matching preset for these bone names, or a RigError saying what is missing."""
    candidates = [PRESETS[preset]] if preset else list(PRESETS.values())
    if preset and preset not in PRESETS:
        raise RigError(f"Unknown bone-map preset {preset!r}; known: {', '.join(PRESETS)}")
    best = max((match_preset(p, bone_names) for p in candidates), key=lambda m: (m.confidence, len(m.joints)))
    missing_core = [j for j in CORE_JOINTS if j not in best.joints]
    if missing_core:
        known = ", ".join(p.label for p in PRESETS.values())
        raise RigError(
            "Could not map this rig: no bones found for "
            + ", ".join(missing_core)
            + f". Gestura knows these rigs: {known}. "
            + f"(Closest: {PRESETS[best.preset].label}, {len(best.joints)} joints matched.)"
        )
    return best
