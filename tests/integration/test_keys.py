"""Editable keys in real Blender: reduced keys evaluate within the bound, groups per body part, NLA per part,
versioned actions, all-or-nothing writing, one undo step, and the BVH export of the kept motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import EXAMPLE_WAV, ROOT

bpy = pytest.importorskip("bpy")

from gestura.inference.errors import RigError  # noqa: E402
from gestura.inference.skeleton import PART_OF_JOINT  # noqa: E402
from gestura.retarget import blender_rig  # noqa: E402
from gestura.retarget.blender_rig import KEYS_PROP, MOTION_PROP, PART_LABELS, SWITCHES_GROUP, stored_motion  # noqa: E402
from gestura.retarget.channels import rotation_channels  # noqa: E402
from gestura.retarget.keyreduce import rotation_angle_error, rotation_reference  # noqa: E402
from gestura.retarget.solve import retarget  # noqa: E402

SRT = ROOT / "examples" / "speech" / "hello.srt"


def _setup(scene, rig, *, frame_start=1, max_angle_deg=0.5, nla=False, seed=0):
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    strip = scene.sequence_editor.strips.get("speech")
    if strip is None:
        strip = scene.sequence_editor.strips.new_sound("speech", str(EXAMPLE_WAV), 1, frame_start)
    settings = scene.gestura
    settings.rig = rig
    settings.audio_source = "STRIP"
    settings.sound_strip = strip.name
    settings.transcript_source = "FILE"
    settings.transcript_file = str(SRT)
    settings.style_prompt = "excited keynote speaker"
    settings.engine = "rule"
    settings.seed = seed
    keys = scene.gestura_keys
    keys.reduce_keys = max_angle_deg > 0
    keys.max_angle_error = math.radians(max_angle_deg)
    keys.nla_per_part = nla
    return strip


def _bag(action):
    return action.layers[0].strips[0].channelbag(action.slots[0])


def _dense(rig):
    """The dense channels the keys stand for: the motion kept on the rig, retargeted again."""
    from gestura.operators.scene_inputs import check_rig

    motion, info = stored_motion(rig)
    rest, bone_map = check_rig(rig)
    solved = retarget(motion, rest, bone_map.joints)
    return solved, bone_map, info


def _evaluate(fcurve, frames) -> np.ndarray:
    return np.array([fcurve.evaluate(f) for f in frames])


def test_reduced_keys_stay_within_the_angle_on_every_frame_of_a_rigify_rig(scene, testrigs):
    rig = testrigs.append_rigify_rig()
    strip = _setup(scene, rig, frame_start=20, max_angle_deg=1.0)
    strip.frame_offset_start = 10
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    action = rig.animation_data.action
    bag = _bag(action)
    solved, _bone_map, info = _dense(rig)
    start = strip.frame_final_start
    assert info["start_frame"] == start == 30
    n = next(iter(solved.rotations.values())).shape[0]
    frames = start + np.arange(n)

    kept = dense = 0
    worst = 0.0
    for bone, quats in solved.rotations.items():
        mode = rig.pose.bones[bone].rotation_mode
        prop, channels = rotation_channels(quats, mode)
        curves = [bag.fcurves.find(f'pose.bones["{bone}"].{prop}', index=k) for k in range(channels.shape[1])]
        got = np.stack([_evaluate(fc, frames) for fc in curves], 1)
        worst = max(worst, float(np.degrees(rotation_angle_error(mode, got, rotation_reference(mode, channels))).max()))
        key_frames = [np.array([k.co[0] for k in fc.keyframe_points]) for fc in curves]
        assert all(np.array_equal(kf, key_frames[0]) for kf in key_frames)  # a bone's channels share frames
        assert key_frames[0][0] == start and key_frames[0][-1] == start + n - 1
        assert {k.handle_left_type for fc in curves for k in fc.keyframe_points} == {"ALIGNED"}
        kept += sum(len(fc.keyframe_points) for fc in curves)
        dense += n * len(curves)
    loc = bag.fcurves.find(f'pose.bones["{solved.root_bone}"].location', index=0)
    root = np.stack([_evaluate(bag.fcurves.find(loc.data_path, index=k), frames) for k in range(3)], 1)
    kept += 3 * len(loc.keyframe_points)
    dense += 3 * n
    assert worst <= 1.0, worst
    assert np.linalg.norm(root - solved.root_location, axis=-1).max() <= 0.001
    assert kept <= dense / 5, (kept, dense)
    figures = action[KEYS_PROP]
    assert figures["keys"] == kept and figures["dense_keys"] == dense
    assert abs(figures["max_angle_deg"] - worst) < 0.01

    # What the rig shows: the pose bones' own channels after frame changes (quaternions normalised as Blender does).
    arm = [b for b in solved.rotations if rig.pose.bones[b].rotation_mode == "QUATERNION"]
    for t in range(0, n, 5):
        scene.frame_set(int(start + t))
        got = np.array([tuple(rig.pose.bones[b].rotation_quaternion) for b in arm])
        want = np.array([rotation_channels(solved.rotations[b][t:t + 1], "QUATERNION")[1][0] for b in arm])
        assert np.degrees(rotation_angle_error("QUATERNION", got, rotation_reference("QUATERNION", want))).max() <= 1.0


def test_fcurves_are_grouped_by_body_part(scene, testrigs):
    rig = testrigs.append_rigify_rig()
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    bag = _bag(rig.animation_data.action)
    from gestura.operators.scene_inputs import check_rig

    _rest, bone_map = check_rig(rig)
    part_of_bone = {bone: PART_LABELS[PART_OF_JOINT[joint]] for joint, bone in bone_map.joints.items()}
    names = [g.name for g in bag.groups]
    assert names == [*PART_LABELS.values(), SWITCHES_GROUP]
    for fc in bag.fcurves:
        bone = fc.data_path.split('"')[1]
        if fc.data_path.endswith('"]'):  # a custom property: Rigify's FK and follow switches
            assert fc.group.name == SWITCHES_GROUP
        elif bone in part_of_bone:
            assert fc.group.name == part_of_bone[bone], fc.data_path


def _pose(rig, bones):
    return np.array([np.array(rig.pose.bones[b].matrix) for b in bones])


def test_nla_track_per_part_reproduces_the_pose_and_parts_mute_alone(scene, testrigs):
    rig = testrigs.append_rigify_rig()
    strip = _setup(scene, rig, frame_start=12)
    hand_keyed = bpy.data.actions.new("hand_keyed")
    rig.animation_data_create().action = hand_keyed
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    single = rig.animation_data.action
    solved, bone_map, _info = _dense(rig)
    bones = list(solved.rotations)
    frames = list(range(strip.frame_final_start, strip.frame_final_end, 11))
    want = []
    for f in frames:
        scene.frame_set(f)
        want.append(_pose(rig, bones))

    scene.gestura_keys.nla_per_part = True
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    anim = rig.animation_data
    assert anim.action is None  # the parts play from the NLA
    assert single.use_fake_user and hand_keyed.use_fake_user and single.name in bpy.data.actions
    tracks = {t.name: t for t in anim.nla_tracks}
    labels = list(PART_LABELS.values())
    assert [t.name for t in reversed(list(anim.nla_tracks))] == [f"Gestures {label}" for label in labels]
    parts = {label: part for part, label in PART_LABELS.items()}
    for label in labels:
        (nla_strip,) = tracks[f"Gestures {label}"].strips
        assert nla_strip.frame_start == strip.frame_final_start and nla_strip.blend_type == "REPLACE"
        assert nla_strip.action.name == f"rig_gestures_{parts[label]}"
        assert nla_strip.action_slot == nla_strip.action.slots[0]
        bag = _bag(nla_strip.action)
        assert [g.name for g in bag.groups] == [label, SWITCHES_GROUP]
        joint_of = {b: j for j, b in bone_map.joints.items()}
        for fc in bag.fcurves:
            joint = joint_of.get(fc.data_path.split('"')[1])
            if fc.group.name != SWITCHES_GROUP and joint is not None:
                assert PART_OF_JOINT[joint] == parts[label], fc.data_path

    for f, expected in zip(frames, want, strict=True):
        scene.frame_set(f)
        assert np.abs(_pose(rig, bones) - expected).max() < 1e-5

    # Muting one part's track leaves the other parts as they were.
    tracks["Gestures Left Arm"].mute = True
    for pb in rig.pose.bones:
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
    scene.frame_set(frames[3])
    left_arm = [b for j, b in bone_map.joints.items() if PART_OF_JOINT[j] == "left_arm"]
    head = [b for j, b in bone_map.joints.items() if PART_OF_JOINT[j] == "head"]
    assert all(tuple(rig.pose.bones[b].rotation_quaternion) == (1.0, 0.0, 0.0, 0.0) for b in left_arm)
    assert all(tuple(rig.pose.bones[b].rotation_quaternion) != (1.0, 0.0, 0.0, 0.0) for b in head)


def test_actions_and_tracks_are_versioned_never_overwritten(scene, testrigs):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig)
    taken = bpy.data.actions.new("Body_gestures_head")  # a user's action that happens to have a part's name
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    assert rig.animation_data.action.name == "Body_gestures.001"
    assert bpy.data.actions["Body_gestures"].use_fake_user
    scene.gestura_keys.nla_per_part = True
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    strips = {t.name: t.strips[0].action.name for t in rig.animation_data.nla_tracks}
    assert strips["Gestures Head"] == "Body_gestures_head.001"  # .001 for all parts: one version per generation
    assert strips["Gestures Torso"] == "Body_gestures_torso.001"
    assert strips["Gestures Head.001"] == "Body_gestures_head.002"
    assert taken.name == "Body_gestures_head" and len(taken.layers) == 0
    assert bpy.data.actions["Body_gestures.001"].use_fake_user
    assert rig.animation_data.action is None


def _snapshot(rig) -> dict:
    anim = rig.animation_data
    record = rig.get(MOTION_PROP)
    return {
        "actions": sorted((a.name, a.use_fake_user, a.users) for a in bpy.data.actions),
        "action": anim.action.name if anim and anim.action else None,
        "slot": anim.action_slot.identifier if anim and anim.action_slot else None,
        "tracks": [(t.name, t.mute, [(s.name, s.action.name if s.action else None) for s in t.strips])
                   for t in anim.nla_tracks] if anim else None,
        "motion": (record["actions"], hash(bytes(record["rotations"]))) if record is not None else None,
        "pose": [tuple(pb.rotation_quaternion) + tuple(pb.location) for pb in rig.pose.bones],
    }


@pytest.mark.parametrize("nla", [False, True])
@pytest.mark.parametrize("fail_at", ["fcurve", "motion_record"])
def test_a_failure_leaves_the_rigs_animation_exactly_as_it_was(scene, testrigs, monkeypatch, nla, fail_at):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, nla=True)
    assert bpy.ops.gestura.generate() == {"FINISHED"}  # NLA tracks and a kept motion already there
    scene.gestura_keys.nla_per_part = False
    assert bpy.ops.gestura.generate() == {"FINISHED"}  # and an active action
    scene.gestura_keys.nla_per_part = nla
    before = _snapshot(rig)
    calls = {"n": 0}
    original = blender_rig._write_fcurve

    def failing_fcurve(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 40:
            raise RigError("simulated failure while writing keys")
        return original(*args, **kwargs)

    def failing_record(*_args, **_kwargs):
        raise RigError("simulated failure after the tracks and actions were made")

    if fail_at == "fcurve":
        monkeypatch.setattr(blender_rig, "_write_fcurve", failing_fcurve)
    else:
        monkeypatch.setattr(blender_rig, "_motion_record", failing_record)
    with pytest.raises(RuntimeError, match="simulated failure"):  # the operator's error report, in background mode
        bpy.ops.gestura.generate()
    assert "simulated failure" in scene.gestura.status
    assert _snapshot(rig) == before


def test_generation_is_one_undo_step(scene, testrigs):
    """In the UI the operator (bl_options UNDO) pushes one step when it finishes, and the write makes no operator
    calls of its own. Background mode pushes no operator steps, so the steps are pushed by hand around it: one
    undo takes back everything the generation did (actions, fake users, NLA tracks, the kept motion)."""
    from gestura.operators.generate import GESTURA_OT_generate

    assert "UNDO" in GESTURA_OT_generate.bl_options
    rig = testrigs.build_canonical_rig("Body", "smplx")
    bpy.data.actions.new("hand_keyed")
    rig.animation_data_create().action = bpy.data.actions["hand_keyed"]
    _setup(scene, rig, nla=True)
    bpy.ops.ed.undo_push(message="before Gestura")
    before = _snapshot(rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    bpy.ops.ed.undo_push(message="Generate Gestures")
    after = _snapshot(bpy.data.objects["Body"])
    assert after != before
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert _snapshot(bpy.data.objects["Body"]) == before
    assert bpy.ops.ed.redo() == {"FINISHED"}
    assert _snapshot(bpy.data.objects["Body"]) == after


def test_export_gestures_as_bvh_writes_the_kept_motion_also_after_reopening(scene, testrigs, tmp_path):
    from gestura.training.data.bvh_reader import read_bvh

    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig)
    assert not bpy.ops.gestura.export_bvh.poll()  # nothing generated yet
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    motion, info = stored_motion(rig)
    fps = scene.render.fps / scene.render.fps_base
    assert info["fps"] == fps and info["actions"] == [rig.animation_data.action.name]

    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    assert scene.gestura.rig is not None
    out = tmp_path / "gestures.bvh"
    assert bpy.ops.gestura.export_bvh(filepath=str(out)) == {"FINISHED"}
    bvh = read_bvh(out)
    assert bvh.num_frames == motion.num_frames and abs(bvh.frame_time - 1.0 / fps) < 1e-6
    from gestura.inference.rotations import quat_to_matrix
    from gestura.inference.skeleton import JOINT_NAMES

    want = quat_to_matrix(motion.rotations)
    got = bvh.rotations[:, [bvh.index(n) for n in JOINT_NAMES]]
    assert np.abs(got - want).max() < 1e-3
    assert np.abs(bvh.positions[:, bvh.index("pelvis")] - motion.root * 100.0).max() < 1e-2
