"""The thin bpy layer of retargeting: read a rig's rest data, write keys into a new action.

One code path for Blender 4.5 and 5.x: slotted actions, channelbags and F-curves filled with
foreach_set (never keyframe_insert in a loop, never editor operators).
"""

from __future__ import annotations

from typing import cast

import bpy
import numpy as np

from ..inference.errors import RigError
from .bonemaps import BoneMap
from .channels import rotation_channels
from .solve import RetargetResult, RigRest


def read_rig_rest(rig: bpy.types.Object) -> RigRest:
    if rig is None or rig.type != "ARMATURE":
        raise RigError("Pick an armature object as the rig")
    bones = list(rig.data.bones)
    if not bones:
        raise RigError(f"Armature {rig.name!r} has no bones")
    # Parents first, so the solver can walk the hierarchy in one pass.
    ordered: list[bpy.types.Bone] = []
    seen: set[str] = set()
    stack = [b for b in bones if b.parent is None][::-1]
    while stack:
        b = stack.pop()
        ordered.append(b)
        seen.add(b.name)
        stack.extend(list(b.children)[::-1])
    index = {b.name: i for i, b in enumerate(ordered)}
    matrices = np.array([np.array(b.matrix_local) for b in ordered])
    tails = np.array([[b.tail_local.x, b.tail_local.y, b.tail_local.z] for b in ordered])
    parents = [index[b.parent.name] if b.parent else -1 for b in ordered]
    return RigRest([b.name for b in ordered], parents, matrices, tails)


def _bone_path(bone: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def _add_fcurve(bag, groups: dict, bone: str, data_path: str, index: int, frames: np.ndarray, values: np.ndarray):
    fc = bag.fcurves.new(data_path, index=index)
    if bone not in groups:
        groups[bone] = bag.groups.new(bone)
    fc.group = groups[bone]
    n = len(frames)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    fc.keyframe_points.foreach_set("co", co)
    fc.update()
    return fc


def write_action(
    rig: bpy.types.Object,
    result: RetargetResult,
    bone_map: BoneMap,
    start_frame: float,
    action_name: str,
) -> bpy.types.Action:
    """Key the result into a new action assigned to the rig. The rig's previous action is kept (with
    a fake user so it survives saving). On any failure the rig is left as it was."""
    anim = rig.animation_data
    previous = (anim.action, getattr(anim, "action_slot", None)) if anim else (None, None)
    created_anim = anim is None
    action = bpy.data.actions.new(action_name)
    try:
        slot = action.slots.new(id_type="OBJECT", name=rig.name)
        strip = cast("bpy.types.ActionKeyframeStrip", action.layers.new("Gestures").strips.new(type="KEYFRAME"))
        bag = strip.channelbag(slot, ensure=True)
        groups: dict = {}
        n_frames = len(next(iter(result.rotations.values())))
        frames = start_frame + np.arange(n_frames, dtype=np.float64)
        for bone, quats in result.rotations.items():
            pose_bone = rig.pose.bones[bone]
            prop, values = rotation_channels(quats, pose_bone.rotation_mode)
            for k in range(values.shape[1]):
                _add_fcurve(bag, groups, bone, _bone_path(bone, prop), k, frames, values[:, k])
        if result.root_bone and result.root_location is not None:
            for k in range(3):
                _add_fcurve(bag, groups, result.root_bone, _bone_path(result.root_bone, "location"), k,
                            frames, result.root_location[:, k])
        for bone, props in bone_map.extra_keys.items():
            for prop, value in props.items():
                path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]["{prop}"]'
                _add_fcurve(bag, groups, bone, path, 0, frames[:1], np.array([value]))
        if previous[0] is not None:
            previous[0].use_fake_user = True
        anim = rig.animation_data_create()
        anim.action = action
        anim.action_slot = slot
    except Exception:
        if rig.animation_data is not None:
            if created_anim:
                rig.animation_data_clear()
            else:
                rig.animation_data.action = previous[0]
                if previous[0] is not None and previous[1] is not None:
                    rig.animation_data.action_slot = previous[1]
        bpy.data.actions.remove(action)
        raise
    return action
