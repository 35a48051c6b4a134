"""Generate Gestures in real Blender: keys land on the right bones with the right values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLE_WAV, ROOT

bpy = pytest.importorskip("bpy")

from gestura.inference.motion import resample_motion  # noqa: E402
from gestura.inference.pipeline import GenerationRequest, generate  # noqa: E402
from gestura.inference.skeleton import CANONICAL_TO_BLENDER, JOINT_INDEX, bone_directions  # noqa: E402
from gestura.retarget.blender_rig import read_rig_rest  # noqa: E402
from gestura.retarget.bonemaps import detect_bone_map  # noqa: E402

SRT = ROOT / "examples" / "speech" / "hello.srt"


def _setup(scene, rig, audio, frame_start=1, transcript=None, style=""):
    strip = None
    if audio is not None:
        if scene.sequence_editor is None:
            scene.sequence_editor_create()
        strip = scene.sequence_editor.strips.new_sound("speech", str(audio), 1, frame_start)
    settings = scene.gestura
    settings.rig = rig
    settings.audio_source = "STRIP"
    settings.sound_strip = strip.name if strip else ""
    if transcript:
        settings.transcript_source = "FILE"
        settings.transcript_file = str(transcript)
    settings.style_prompt = style
    scene.gestura_keys.reduce_keys = False  # a key on every frame here; test_keys.py checks reduced keys
    settings.engine = "rule"  # the default is the diffusion engine; these tests check keys, not a model
    return strip


def _fcurves(action):
    bag = action.layers[0].strips[0].channelbags[0]
    return bag.fcurves


def _canonical_directions(request: GenerationRequest, fps: float) -> np.ndarray:
    motion = resample_motion(generate(request).motion, fps)
    glob, _ = motion.global_rotations_and_positions()
    return bone_directions(glob) @ CANONICAL_TO_BLENDER.T


def test_rigify_rig_follows_the_canonical_motion_from_a_trimmed_strip(scene, testrigs):
    rig = testrigs.append_rigify_rig()
    strip = _setup(scene, rig, EXAMPLE_WAV, frame_start=20, transcript=SRT, style="calm teacher")
    strip.frame_offset_start = 15  # the first 15 frames (0.6 s at 25 fps) are trimmed away
    fps = scene.render.fps / scene.render.fps_base
    assert bpy.ops.gestura.generate() == {"FINISHED"}

    action = rig.animation_data.action
    assert action is not None and action.name.startswith(rig.name)
    fcurves = _fcurves(action)
    quat = fcurves.find('pose.bones["upper_arm_fk.L"].rotation_quaternion', index=0)
    assert quat is not None
    frames = np.array([k.co[0] for k in quat.keyframe_points])
    assert frames[0] == strip.frame_final_start == 35
    assert abs(len(frames) - (strip.frame_final_end - strip.frame_final_start)) <= 1
    # The arms are switched to FK by a key, so the deforming bones follow the keyed controls.
    ik_fk = fcurves.find('pose.bones["upper_arm_parent.L"]["IK_FK"]')
    assert ik_fk is not None and ik_fk.keyframe_points[0].co[1] == 1.0

    request = GenerationRequest(
        audio_path=str(EXAMPLE_WAV), audio_offset_s=15 / fps,
        audio_duration_s=(strip.frame_final_end - strip.frame_final_start) / fps,
        transcript_path=str(SRT), style_prompt="calm teacher", engine="rule",
    )
    canonical = _canonical_directions(request, fps)
    bone_map = detect_bone_map(read_rig_rest(rig).names)
    joints = [j for j in bone_map.joints if j != "pelvis"]
    bones = [bone_map.joints[j] for j in joints]
    errors = []
    for t in range(0, len(frames), 7):
        scene.frame_set(int(frames[0]) + t)
        got = testrigs.world_bone_directions(rig, bones)
        want = canonical[t, [JOINT_INDEX[j] for j in joints]]
        errors.append(np.degrees(np.arccos(np.clip((got * want).sum(-1), -1, 1))))
        deform = testrigs.world_bone_directions(rig, ["DEF-upper_arm.L", "upper_arm_fk.L"])
        assert np.degrees(np.arccos(np.clip(deform[0] @ deform[1], -1, 1))) < 3.0
    errors = np.array(errors)
    assert np.median(errors) < 1.0, f"median error {np.median(errors):.2f} deg"
    assert errors.max() < 3.0, f"worst bone {bones[int(errors.max(0).argmax())]}: {errors.max():.2f} deg"


def test_wrists_move_with_speech_and_rest_in_silence(scene, testrigs, speech_with_pause):
    rig = testrigs.append_rigify_rig()
    _setup(scene, rig, speech_with_pause, frame_start=1)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    fps = scene.render.fps / scene.render.fps_base
    speech_len = 10.65
    wrists = ["hand_fk.L", "hand_fk.R"]

    def wrist_path(t0: float, t1: float) -> np.ndarray:
        pts = []
        for f in range(int(t0 * fps) + 1, int(t1 * fps) + 1):
            scene.frame_set(f)
            pts.append(testrigs.world_bone_heads(rig, wrists))
        return np.array(pts)

    speaking = wrist_path(0.5, speech_len - 0.5)
    silent = wrist_path(speech_len + 1.2, speech_len + 2.6)
    speed_speaking = np.linalg.norm(np.diff(speaking, axis=0), axis=-1).sum(0).max() / (speech_len - 1)
    speed_silent = np.linalg.norm(np.diff(silent, axis=0), axis=-1).sum(0).max() / 1.4
    assert speed_speaking > 0.08, f"wrists barely move while speaking: {speed_speaking:.3f} m/s"
    # In silence only idle motion is left (breathing, sway): a few cm/s, a fraction of the gesturing.
    assert speed_silent < 0.05 and speed_silent < 0.3 * speed_speaking, (speed_silent, speed_speaking)
    # Resting means hands down by the body, below the shoulders.
    rest_heights = silent[..., 2].mean(0)
    shoulders = testrigs.world_bone_heads(rig, ["upper_arm_fk.L", "upper_arm_fk.R"])[:, 2]
    assert np.all(rest_heights < shoulders - 0.2)


@pytest.mark.parametrize("rotation_mode", ["YXZ", "AXIS_ANGLE", "QUATERNION"])
def test_keys_use_each_bones_rotation_mode_on_an_fbx_scaled_mixamo_rig(scene, testrigs, rotation_mode):
    rig = testrigs.build_canonical_rig("Armature", "mixamo", a_pose=True, roll_seed=4,
                                       rotation_mode=rotation_mode, fbx_units=True)
    _setup(scene, rig, EXAMPLE_WAV)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    fcurves = _fcurves(rig.animation_data.action)
    prop = {"YXZ": "rotation_euler", "AXIS_ANGLE": "rotation_axis_angle", "QUATERNION": "rotation_quaternion"}
    arm = 'pose.bones["mixamorig:LeftArm"].'
    assert fcurves.find(arm + prop[rotation_mode], index=0) is not None
    for other in set(prop.values()) - {prop[rotation_mode]}:
        assert fcurves.find(arm + other, index=0) is None
    # Hips carry the root motion as location keys in the bone's own (centimetre, Y-up) space.
    assert fcurves.find('pose.bones["mixamorig:Hips"].location', index=0) is not None
    # Euler keys stay continuous: no jumps of ~2 pi between neighbouring frames.
    if rotation_mode == "YXZ":
        for fc in fcurves:
            if fc.data_path.endswith("rotation_euler"):
                values = np.array([k.co[1] for k in fc.keyframe_points])
                assert np.abs(np.diff(values)).max() < 1.0, fc.data_path


def test_existing_action_is_kept_and_a_new_one_is_made_each_time(scene, testrigs):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    old = bpy.data.actions.new("hand_animated")
    rig.animation_data_create().action = old
    _setup(scene, rig, EXAMPLE_WAV)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    first = rig.animation_data.action
    assert first != old and old.name in bpy.data.actions and old.use_fake_user
    scene.gestura.seed = 7
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    second = rig.animation_data.action
    assert second.name != first.name and first.name in bpy.data.actions


def test_scene_frame_rate_gives_whole_frame_keys(scene, testrigs):
    scene.render.fps = 24
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, EXAMPLE_WAV, frame_start=101)
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    fc = _fcurves(rig.animation_data.action).find('pose.bones["left_elbow"].rotation_quaternion', index=0)
    frames = np.array([k.co[0] for k in fc.keyframe_points])
    assert frames[0] == 101 and np.all(np.diff(frames) == 1)
    assert abs(len(frames) - 10.65 * 24) <= 2


def test_transcript_from_text_strips(scene, testrigs):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, EXAMPLE_WAV, frame_start=1)
    for i, (text, start, end) in enumerate([("Hello there.", 1, 26), ("I have a big idea for you.", 33, 80)]):
        strips = scene.sequence_editor.strips
        try:  # Blender 5.0 takes a length, 4.5 an end frame
            strip = strips.new_effect(f"t{i}", "TEXT", 3, frame_start=start, length=end - start)
        except TypeError:
            strip = strips.new_effect(f"t{i}", "TEXT", 3, frame_start=start, frame_end=end)
        strip.text = text
    scene.gestura.transcript_source = "TEXT_STRIPS"
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    assert scene.gestura.status.endswith(" 9 words")


def test_style_presets_fill_the_prompt_and_change_the_motion(scene, testrigs):
    from gestura.inference.style_catalog import STYLE_CATALOG

    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, EXAMPLE_WAV)
    assert len(STYLE_CATALOG) >= 24
    speeds = {}
    for name in ("calm_teacher", "excited_keynote_speaker"):
        assert bpy.ops.gestura.style_preset(style=name) == {"FINISHED"}
        assert scene.gestura.style_prompt == next(e.label for e in STYLE_CATALOG if e.name == name)
        assert bpy.ops.gestura.generate() == {"FINISHED"}
        path = []
        for f in range(scene.frame_start, scene.frame_start + 250):
            scene.frame_set(f)
            path.append(testrigs.world_bone_heads(rig, ["left_wrist", "right_wrist"]))
        speeds[name] = np.linalg.norm(np.diff(np.array(path), axis=0), axis=-1).mean()
    assert speeds["excited_keynote_speaker"] > 1.3 * speeds["calm_teacher"], speeds


def test_a_packed_sound_strip_works_and_leaves_no_temporary_file(scene, testrigs, tmp_path):
    import shutil
    import tempfile
    from pathlib import Path

    wav = tmp_path / "speech.wav"
    shutil.copy(EXAMPLE_WAV, wav)
    rig = testrigs.build_canonical_rig("Body", "smplx")
    strip = _setup(scene, rig, wav)
    strip.sound.pack()
    wav.unlink()  # only the copy packed inside the .blend is left
    before = set(Path(tempfile.gettempdir()).glob("gestura_*"))
    assert bpy.ops.gestura.generate() == {"FINISHED"}
    assert rig.animation_data.action is not None
    assert set(Path(tempfile.gettempdir()).glob("gestura_*")) == before
