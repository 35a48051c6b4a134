"""The thin bpy layer of bone mapping: read what detection needs from a rig, and pick the rig's bone map
(the manual mapping stored on the rig object when the user set one, else detection)."""

from __future__ import annotations

import bpy

from ..inference.errors import RigError
from .blender_rig import read_rig_rest
from .bonemaps import BoneMap
from .detect import detect_bone_map, manual_bone_map
from .solve import RigRest


def read_rig(rig: bpy.types.Object) -> RigRest:
    """The rig's rest data with what detection and the solver use besides (world matrix, constraints,
    inherited rotation, deform flags), as read_rig_rest reads them."""
    return read_rig_rest(rig)


def manual_joints(rig: bpy.types.Object) -> dict[str, str] | None:
    """The rig's manual mapping (canonical joint -> bone) when the user set one and it is in use."""
    mapping = getattr(rig, "gestura_mapping", None)
    if mapping is None or not mapping.use_manual:
        return None
    joints = {item.name: item.bone for item in mapping.joints if item.bone}
    return joints or None


def _root_motion(rig: bpy.types.Object) -> bool:
    mapping = getattr(rig, "gestura_mapping", None)
    return True if mapping is None else bool(mapping.root_motion)


def _keep_existing_switches(rig: bpy.types.Object, bone_map: BoneMap) -> BoneMap:
    """Only key switch properties the rig's pose bones have (an F-curve on a missing property is dead)."""
    pose = rig.pose.bones  # type: ignore[union-attr]  # an armature object always has a pose
    bone_map.extra_keys = {
        b: {p: v for p, v in props.items() if p in pose[b].keys()}
        for b, props in bone_map.extra_keys.items() if b in pose
    }
    bone_map.extra_keys = {b: props for b, props in bone_map.extra_keys.items() if props}
    return bone_map


def rig_bone_map(rig: bpy.types.Object, rest: RigRest | None = None) -> BoneMap:
    """The bone map generation uses for this rig: the manual mapping if set, else detection (names and
    topology). `rest`: the rig's read_rig_rest, when the caller has it already."""
    if rig is None or rig.type != "ARMATURE":
        raise RigError("Pick an armature object as the rig")
    rest = rest if rest is not None else read_rig_rest(rig)
    joints = manual_joints(rig)
    constrained = dict(zip(rest.names, rest.constrained or [], strict=True))
    if joints is not None:
        bone_map = manual_bone_map(joints, rest.names, root_motion=_root_motion(rig), constrained=constrained)
    else:
        bone_map = detect_bone_map(rest)
        bone_map.root_motion = _root_motion(rig)
    return _keep_existing_switches(rig, bone_map)
