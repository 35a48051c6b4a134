"""The thin bpy layer of retargeting: read a rig's rest data, write keys into new actions.

One code path for Blender 4.5 and 5.x: slotted actions, channelbags and F-curves filled with
foreach_set (never keyframe_insert in a loop, never editor operators).

What an animator gets (write_keys):
- Sparse keys by default: retarget.keyreduce picks, per bone, the frames to key so that the curves Blender
  evaluates stay within a maximum angle of the dense motion (and a distance for root motion). The keys
  carry ALIGNED Bezier handles computed from the motion's slope, so the curve is smooth and moving a key
  moves its handles with it. A tolerance of 0 keys every frame, with Blender's automatic handles.
- F-curves grouped per body part (Head, Torso, Left Arm, ...), plus a "Rig Switches" group for the FK and
  follow switches some rigs need keyed.
- Either one new action on the rig, or (nla_per_part) one action per body part, each on its own NLA
  track, so a part can be muted, soloed, blended, shifted in time or edited in tweak mode on its own.
- Never an overwritten action: names are versioned (<rig>_gestures, <rig>_gestures.001, ...); the rig's
  previous action stays in the file with a fake user.
- All-or-nothing: if anything fails, the rig's animation is left exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, cast

import bpy
import numpy as np

from ..inference.errors import RigError
from ..inference.motion import CanonicalMotion
from ..inference.skeleton import JOINT_INDEX, NUM_JOINTS, PART_OF_JOINT
from .bonemaps import BoneMap
from .channels import rotation_channels
from .keyreduce import BoneChannels, ReducedKeys, ReductionReport, bezier_handles, reduce_keys
from .solve import RetargetResult, RigRest

PART_LABELS: dict[str, str] = {
    "head": "Head", "torso": "Torso", "left_arm": "Left Arm", "right_arm": "Right Arm",
    "left_hand": "Left Hand", "right_hand": "Right Hand", "lower_body": "Lower Body",
}
SWITCHES_GROUP = "Rig Switches"
MOTION_PROP = "gestura_motion"  # the last generated canonical motion, on the rig object
KEYS_PROP = "gestura_keys"  # key-reduction figures, on each written action


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
    pose = rig.pose.bones
    constrained = [
        b.name in pose and any(not c.mute and c.influence > 0.0 for c in pose[b.name].constraints) for b in ordered
    ]
    optional: dict[str, Any] = {
        "world": np.array(rig.matrix_world),
        "constrained": constrained,
        "inherit_rotation": [bool(b.use_inherit_rotation) for b in ordered],
        "deform": [bool(b.use_deform) for b in ordered],
    }
    accepted = {f.name for f in fields(RigRest)}  # the optional rest data this version of the solver reads
    return RigRest([b.name for b in ordered], parents, matrices, tails,
                   **{k: v for k, v in optional.items() if k in accepted})


# ---------------------------------------------------------------------------------------------------------------
# Options and results


@dataclass
class KeyOptions:
    max_angle_deg: float = 0.5  # key reduction tolerance on each bone's rotation; 0 = key every frame
    max_distance: float = 0.001  # on root motion, in world units (metres); 0 = key every frame
    nla_per_part: bool = False  # one action and NLA track per body part instead of one action


@dataclass
class KeyWriteResult:
    actions: list  # the new actions: one, or one per body part (in PART_LABELS order)
    tracks: list[str]  # NLA tracks made (nla_per_part)
    report: ReductionReport
    parts: dict[str, list[str]] = field(default_factory=dict)  # body part -> bones keyed

    @property
    def action(self):
        return self.actions[0]


@dataclass
class _BonePlan:
    bone: str
    part: str
    rotation_path: str | None
    location_path: str | None
    keys: ReducedKeys


def _bone_path(bone: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def _body_parts(rig, bone_map: BoneMap, bones: list[str]) -> dict[str, str]:
    """The body part of each keyed bone: its joint's part, or for a keyed bone the map does not name (a spine
    bone between mapped ones, a twist bone) the part of its nearest mapped ancestor, else of its first mapped
    descendant, else the torso."""
    mapped = {bone: PART_OF_JOINT[joint] for joint, bone in bone_map.joints.items()}
    parts = {}
    for name in bones:
        part = mapped.get(name)
        bone = rig.data.bones.get(name)
        walk = bone.parent if bone is not None else None
        while part is None and walk is not None:
            part, walk = mapped.get(walk.name), walk.parent
        if part is None and bone is not None:
            part = next((mapped[c.name] for c in bone.children_recursive if c.name in mapped), None)
        parts[name] = part or "torso"
    return parts


def _plan(rig, result: RetargetResult, bone_map: BoneMap, start_frame: float, options: KeyOptions):
    """Channels and reduced keys of every bone, computed before anything in the scene is touched."""
    order = {bone: JOINT_INDEX[joint] for joint, bone in bone_map.joints.items()}
    bones = sorted(result.rotations, key=lambda b: order.get(b, NUM_JOINTS))
    if result.root_bone and result.root_location is not None and result.root_bone not in result.rotations:
        bones.append(result.root_bone)
    part_of_bone = _body_parts(rig, bone_map, bones)
    channels, paths = [], []
    for bone in bones:
        pose_bone = rig.pose.bones.get(bone)
        if pose_bone is None:
            raise RigError(f"Bone {bone!r} is not in {rig.name!r}")
        rot_path = None
        rotation = mode = None
        if bone in result.rotations:
            mode = pose_bone.rotation_mode
            prop, rotation = rotation_channels(result.rotations[bone], mode)
            rot_path = _bone_path(bone, prop)
        location = None
        if bone == result.root_bone and result.root_location is not None:
            location = result.root_location
        channels.append(BoneChannels(mode, rotation, location))
        paths.append((rot_path, _bone_path(bone, "location") if location is not None else None))
    # Location keys live in the bone's rest frame in armature units: turn the world tolerance into those.
    scale = max(float(np.max(np.abs(np.array(rig.matrix_world.to_scale())))), 1e-9)
    reduced, report = reduce_keys(channels, options.max_angle_deg, options.max_distance / scale, start_frame)
    plans = [
        _BonePlan(bone, part_of_bone[bone], rp, lp, keys)
        for bone, (rp, lp), keys in zip(bones, paths, reduced, strict=True)
    ]
    # Groups (and parts) in body order: head, torso, arms, hands, lower body.
    part_rank = {p: i for i, p in enumerate(PART_LABELS)}
    plans.sort(key=lambda plan: part_rank.get(plan.part, len(part_rank)))
    return plans, report


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _handle_enum(name: str) -> int:
    prop = cast("bpy.types.EnumProperty", bpy.types.Keyframe.bl_rna.properties["handle_left_type"])
    return prop.enum_items[name].value


def _write_fcurve(bag, group, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
                  slopes: np.ndarray | None):
    """One F-curve from keys at absolute frames: with computed ALIGNED handles when slopes are given, else with
    Blender's automatic (clamped) handles."""
    fc = bag.fcurves.new(data_path, index=index)
    fc.group = group
    n = len(frames)
    kp = fc.keyframe_points
    kp.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    kp.foreach_set("co", co)
    if slopes is not None:
        lx, ly, rx, ry = bezier_handles(frames, values[:, None], slopes[:, None])
        handle = np.empty(2 * n, dtype=np.float32)
        handle[0::2], handle[1::2] = lx, ly[:, 0]
        kp.foreach_set("handle_left", handle)
        handle[0::2], handle[1::2] = rx, ry[:, 0]
        kp.foreach_set("handle_right", handle)
        aligned = np.full(n, _handle_enum("ALIGNED"), dtype=np.int32)
        kp.foreach_set("handle_left_type", aligned)
        kp.foreach_set("handle_right_type", aligned)
    fc.update()
    return fc


class _Target:
    """One new action with its slot and channelbag, and its groups by name."""

    def __init__(self, rig, name: str) -> None:
        self.action = bpy.data.actions.new(name)
        self.slot = self.action.slots.new(id_type="OBJECT", name=rig.name)
        layer = self.action.layers.new("Gestures")
        strip = cast("bpy.types.ActionKeyframeStrip", layer.strips.new(type="KEYFRAME"))
        self.bag = strip.channelbag(self.slot, ensure=True)
        self.groups: dict[str, object] = {}

    def group(self, name: str):
        if name not in self.groups:
            self.groups[name] = self.bag.groups.new(name)
        return self.groups[name]

    def write_bone(self, plan: _BonePlan, start_frame: float) -> None:
        keys = plan.keys
        frames = start_frame + keys.frames.astype(np.float64)
        group = self.group(PART_LABELS.get(plan.part, plan.part))
        n_rot = keys.n_rotation
        columns = [(plan.rotation_path, k, k) for k in range(n_rot)]
        columns += [(plan.location_path, k, n_rot + k) for k in range(keys.values.shape[1] - n_rot)]
        for path, index, col in columns:
            assert path is not None
            _write_fcurve(self.bag, group, path, index, frames, keys.values[:, col],
                          None if keys.slopes is None else keys.slopes[:, col])

    def write_switches(self, bone_map: BoneMap, start_frame: float) -> None:
        for bone, props in bone_map.extra_keys.items():
            for prop, value in props.items():
                path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]["{prop}"]'
                _write_fcurve(self.bag, self.group(SWITCHES_GROUP), path, 0,
                              np.array([start_frame]), np.array([value]), None)


def _version_suffix(version: int) -> str:
    return "" if version == 0 else f".{version:03d}"


def versioned_names(bases: list[str], taken) -> list[str]:
    """The names bases + suffix for the lowest version (none, .001, .002, ...) at which none is taken."""
    version = 0
    while any(b + _version_suffix(version) in taken for b in bases):
        version += 1
    return [b + _version_suffix(version) for b in bases]


def _motion_record(motion: CanonicalMotion, start_frame: float, action_names: list[str]) -> dict:
    return {
        "version": 1,
        "fps": float(motion.fps),
        "frames": int(motion.num_frames),
        "start_frame": float(start_frame),
        "actions": ";".join(action_names),
        # Raw float32 bytes: a byte-string ID property is stored and copied as one block.
        "rotations": np.ascontiguousarray(motion.rotations, dtype=np.float32).tobytes(),
        "root": np.ascontiguousarray(motion.root, dtype=np.float32).tobytes(),
    }


def stored_motion(obj) -> tuple[CanonicalMotion, dict] | None:
    """The last canonical motion written onto this rig (and its record: fps, start frame, actions), or None."""
    record = obj.get(MOTION_PROP) if obj is not None else None
    if record is None:
        return None
    try:
        n = int(record["frames"])
        rotations = np.frombuffer(bytes(record["rotations"]), dtype=np.float32).reshape(n, NUM_JOINTS, 4)
        root = np.frombuffer(bytes(record["root"]), dtype=np.float32).reshape(n, 3)
        motion = CanonicalMotion(rotations.astype(np.float64), root.astype(np.float64), float(record["fps"]))
    except (KeyError, ValueError, TypeError):
        return None
    info = {"fps": float(record["fps"]), "start_frame": float(record["start_frame"]),
            "actions": [a for a in str(record.get("actions", "")).split(";") if a]}
    return motion, info


def write_keys(
    rig: bpy.types.Object,
    result: RetargetResult,
    bone_map: BoneMap,
    start_frame: float,
    base_name: str,
    options: KeyOptions | None = None,
    motion: CanonicalMotion | None = None,
) -> KeyWriteResult:
    """Key the result into new actions on the rig (see the module's docstring). motion, when given, is kept on
    the rig (MOTION_PROP) for the BVH export. On any failure the rig's animation is left as it was."""
    options = options or KeyOptions()
    plans, report = _plan(rig, result, bone_map, start_frame, options)
    parts: dict[str, list[str]] = {}
    for plan in plans:
        parts.setdefault(plan.part, []).append(plan.bone)
    part_order = [p for p in PART_LABELS if p in parts] + [p for p in parts if p not in PART_LABELS]

    anim = rig.animation_data
    if anim is not None and anim.use_tweak_mode:
        raise RigError(f"{rig.name!r} is in NLA tweak mode: leave it (Tab in the NLA editor) and generate again")
    previous_action = anim.action if anim is not None else None
    previous_slot = getattr(anim, "action_slot", None) if anim is not None else None
    previous_fake = previous_action.use_fake_user if previous_action is not None else False
    previous_motion = rig[MOTION_PROP].to_dict() if rig.get(MOTION_PROP) is not None else None
    created_anim = anim is None
    targets: list[_Target] = []
    tracks: list = []
    try:
        if options.nla_per_part:
            names = versioned_names([f"{base_name}_{p}" for p in part_order], bpy.data.actions)
            for part, name in zip(part_order, names, strict=True):
                target = _Target(rig, name)
                targets.append(target)
                for plan in plans:
                    if plan.part == part:
                        target.write_bone(plan, start_frame)
                # Every part keys the rig's switches, so each track works muted, soloed or alone.
                target.write_switches(bone_map, start_frame)
        else:
            target = _Target(rig, versioned_names([base_name], bpy.data.actions)[0])
            targets.append(target)
            for plan in plans:
                target.write_bone(plan, start_frame)
            target.write_switches(bone_map, start_frame)
        for target in targets:
            target.action[KEYS_PROP] = {**report.as_dict(), "max_angle_tolerance_deg": float(options.max_angle_deg),
                                        "max_distance_tolerance": float(options.max_distance)}

        anim = rig.animation_data_create()
        if previous_action is not None:
            previous_action.use_fake_user = True
        if options.nla_per_part:
            # The parts play from the NLA; the previous action is unassigned (kept) so it does not cover them.
            if previous_action is not None:
                anim.action = None
            taken = {t.name for t in anim.nla_tracks}
            labels = [PART_LABELS.get(p, p) for p in part_order]
            track_names = versioned_names([f"Gestures {label}" for label in labels], taken)
            # Created bottom-up, so the NLA editor lists them in body order from the top (Head first).
            for target, track_name in reversed(list(zip(targets, track_names, strict=True))):
                track = anim.nla_tracks.new()
                tracks.append(track)
                track.name = track_name
                strip = track.strips.new(target.action.name, int(round(start_frame)), target.action)
                strip.action_slot = target.slot
                strip.blend_type = "REPLACE"
            tracks.reverse()
        else:
            anim.action = targets[0].action
            anim.action_slot = targets[0].slot
        if motion is not None:
            rig[MOTION_PROP] = _motion_record(motion, start_frame, [t.action.name for t in targets])
    except Exception:
        _roll_back(rig, created_anim, previous_action, previous_slot, previous_fake, previous_motion, targets, tracks)
        raise
    return KeyWriteResult([t.action for t in targets], [t.name for t in tracks], report, parts)


def _roll_back(rig, created_anim, previous_action, previous_slot, previous_fake, previous_motion, targets, tracks):
    anim = rig.animation_data
    if anim is not None:
        for track in tracks:
            anim.nla_tracks.remove(track)
        if created_anim:
            rig.animation_data_clear()
        else:
            if anim.action != previous_action:
                anim.action = previous_action
            if previous_action is not None and previous_slot is not None and anim.action_slot != previous_slot:
                anim.action_slot = previous_slot
    if previous_action is not None:
        previous_action.use_fake_user = previous_fake
    if previous_motion is None:
        if rig.get(MOTION_PROP) is not None:
            del rig[MOTION_PROP]
    else:
        rig[MOTION_PROP] = previous_motion
    for target in targets:
        bpy.data.actions.remove(target.action)


def write_action(
    rig: bpy.types.Object,
    result: RetargetResult,
    bone_map: BoneMap,
    start_frame: float,
    action_name: str,
    options: KeyOptions | None = None,
    motion: CanonicalMotion | None = None,
) -> bpy.types.Action:
    """write_keys(), returning the (first) new action. Kept for callers that want one action."""
    return write_keys(rig, result, bone_map, start_frame, action_name, options, motion).action
