"""Gestures land on every kind of rig (issue 6): each preset's procedural rig (tools/rigspecs.py) in T-pose,
A-pose, FBX units (Y-up data in cm, object rotated 90 degrees and scaled 0.01) and Euler / axis-angle bones,
the Rigify rig Blender's Rigify generates, and a BEAT-layout BVH imported by Blender's own importer; an unknown
rig gets a clear report and works once mapped by hand (the mapping table filled in code).

Every test goes through Generate Gestures (the operator, in background mode) with the rule engine's motion for
the example speech (computed once; generate() is swapped for the cached result where marked), then reads the
posed bones back from Blender: the world direction of each mapped bone must follow the canonical motion within
3 degrees median and 8 degrees at the 95th percentile (keys reduced as by default). A bone whose canonical child
is not mapped (fewer spine bones, no neck) must aim at the next mapped joint; the pelvis bone must turn with the
canonical pelvis.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLE_WAV, ROOT

bpy = pytest.importorskip("bpy")

from gestura.inference.errors import RigError  # noqa: E402
from gestura.inference.pipeline import GenerationRequest, generate  # noqa: E402
from gestura.inference.skeleton import CANONICAL_TO_BLENDER, PART_OF_JOINT  # noqa: E402
from gestura.operators import scene_inputs  # noqa: E402
from gestura.retarget.detect_blender import rig_bone_map  # noqa: E402

pytestmark = pytest.mark.integration

SRT = ROOT / "examples" / "speech" / "hello.srt"
MEDIAN_LIMIT, P95_LIMIT = 3.0, 8.0
PRESET_RIGS = ("vroid", "vrm1", "ue4", "ue5", "arp", "rigify_def", "smplx", "smplh", "mixamo", "beat")
VARIANTS = ("t_pose", "a_pose", "fbx_0.01", "euler")
EULER_MODES = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "AXIS_ANGLE")
RESULTS: dict[str, tuple[float, float, int]] = {}


@pytest.fixture(scope="module")
def speech_result():
    """The rule engine's gestures for the example speech (30 fps), computed once."""
    return generate(GenerationRequest(audio_path=str(EXAMPLE_WAV), transcript_path=str(SRT), engine="rule"))


@pytest.fixture
def cached_generate(monkeypatch, speech_result):
    """Generate Gestures with the cached motion in place of a new generation (the rest of the path is real)."""
    assert hasattr(scene_inputs, "generate")
    monkeypatch.setattr(scene_inputs, "generate", lambda request, progress=None: speech_result)
    return speech_result


@pytest.fixture(autouse=True)
def _presets_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GESTURA_PRESETS_DIR", str(tmp_path / "presets"))


def _setup(scene, rig):
    scene.render.fps, scene.render.fps_base = 30, 1.0  # the motion's own rate: frame t is motion frame t
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    strip = scene.sequence_editor.strips.new_sound("speech", str(EXAMPLE_WAV), 1, 1)
    settings = scene.gestura
    settings.rig = rig
    settings.audio_source = "STRIP"
    settings.sound_strip = strip.name
    settings.transcript_source = "NONE"
    settings.engine = "rule"
    return strip


def _pelvis_rest_direction(rig, bone: str) -> np.ndarray:
    world = np.array(rig.matrix_world)[:3, :3]
    d = world @ np.array(rig.data.bones[bone].matrix_local)[:3, 1]
    return d / np.linalg.norm(d)


def direction_errors(rig, bone_map, motion, facing: np.ndarray, testrigs, samples: int = 16) -> np.ndarray:
    """Angles (degrees) between each mapped bone's world direction, read from Blender, and the canonical
    motion's, on `samples` frames spread over the clip (keys start at frame 1)."""
    rigspecs = testrigs.rigspecs
    joints = list(bone_map.joints)
    bones = [bone_map.joints[j] for j in joints]
    pelvis = bone_map.joints.get("pelvis")
    want = rigspecs.expected_world_directions(
        motion, joints, facing, _pelvis_rest_direction(rig, pelvis) if pelvis else None)
    scene = bpy.context.scene
    errors = []
    for t in np.linspace(0, motion.num_frames - 1, samples).astype(int):
        scene.frame_set(1 + int(t))
        got = testrigs.world_bone_directions(rig, bones)
        errors.append(np.degrees(np.arccos(np.clip((got * want[t]).sum(-1), -1.0, 1.0))))
    return np.array(errors)


def _check(name: str, errors: np.ndarray, bones: list[str]) -> None:
    median, p95 = float(np.median(errors)), float(np.percentile(errors, 95))
    RESULTS[name] = (median, p95, len(bones))
    worst = bones[int(errors.max(0).argmax())]
    print(f"\nACCURACY {name}: median {median:.3f} deg, p95 {p95:.3f} deg, max {errors.max():.3f} deg "
          f"({worst}), {len(bones)} bones")
    assert median < MEDIAN_LIMIT, f"{name}: median {median:.2f} deg"
    assert p95 < P95_LIMIT, f"{name}: p95 {p95:.2f} deg (worst bone {worst}: {errors.max():.2f})"


def _spec(testrigs, preset: str, variant: str):
    rigspecs = testrigs.rigspecs
    spec = rigspecs.SPECS[preset](a_pose=40.0 if variant == "a_pose" else 0.0)
    if variant == "fbx_0.01":
        spec = rigspecs.fbx_units(spec)
    mode = "QUATERNION"
    if variant == "euler":
        mode = EULER_MODES[PRESET_RIGS.index(preset) % len(EULER_MODES)]
    return spec, mode


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset", PRESET_RIGS)
def test_every_preset_rig_follows_the_canonical_motion(scene, testrigs, cached_generate, preset, variant):
    spec, mode = _spec(testrigs, preset, variant)
    rig = testrigs.build_spec(spec, rotation_mode=mode, roll_seed=PRESET_RIGS.index(preset))
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    assert bone_map.preset == spec.preset and bone_map.method == "names", bone_map.describe()
    assert bone_map.joints == {j: b for j, b in spec.expected.items() if j in bone_map.joints}
    assert {j for j in spec.expected if j not in bone_map.joints} == set()
    if mode != "QUATERNION":
        prop = "rotation_axis_angle" if mode == "AXIS_ANGLE" else "rotation_euler"
        paths = {fc.data_path for fc in _fcurves(rig)}
        arm = bone_map.joints["left_shoulder"]
        assert any(p.endswith(prop) and arm in p for p in paths)
        assert not any("rotation_quaternion" in p for p in paths)
    errors = direction_errors(rig, bone_map, cached_generate.motion, spec.facing, testrigs)
    _check(f"{preset}/{variant}", errors, list(bone_map.joints.values()))


def _fcurves(rig):
    """Every F-curve of the rig's action, whatever its layout (one action, or NLA tracks per part)."""
    ad = rig.animation_data
    actions = [ad.action] if ad.action else [s.action for t in ad.nla_tracks for s in t.strips]
    out = []
    for action in actions:
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    out.extend(bag.fcurves)
    return out


@pytest.mark.parametrize(("preset", "variant"), [("ue5", "fbx_0.01"), ("arp", "euler"), ("vroid", "a_pose")])
def test_without_key_reduction_the_bones_follow_exactly(scene, testrigs, cached_generate, preset, variant):
    """With a key on every frame the only error left is float precision: the solver itself is exact on these
    rigs (what the accuracy table shows beyond this is key reduction's bounded error)."""
    spec, mode = _spec(testrigs, preset, variant)
    rig = testrigs.build_spec(spec, rotation_mode=mode, roll_seed=3)
    _setup(scene, rig)
    scene.gestura_keys.reduce_keys = False
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    errors = direction_errors(rig, bone_map, cached_generate.motion, spec.facing, testrigs)
    _check(f"{preset}/{variant}, every frame keyed", errors, list(bone_map.joints.values()))
    assert errors.max() < 0.05


def test_a_rig_turned_and_scaled_in_the_world_gestures_relative_to_itself(scene, testrigs, cached_generate):
    rigspecs = testrigs.rigspecs
    spec = rigspecs.turned(rigspecs.unreal(4, 45.0), degrees=150.0, scale=0.01)  # faces away, centimetre scale
    rig = testrigs.build_spec(spec, rotation_mode="ZXY", roll_seed=5)
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    errors = direction_errors(rig, bone_map, cached_generate.motion, spec.facing, testrigs)
    _check("ue4/turned 150 deg, scale 0.01", errors, list(bone_map.joints.values()))


def test_generated_rigify_rig_follows_the_canonical_motion(scene, testrigs, cached_generate):
    rig = testrigs.append_rigify_rig()
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    assert bone_map.preset == "rigify"  # FK controls, not the constrained DEF bones
    errors = direction_errors(rig, bone_map, cached_generate.motion, CANONICAL_TO_BLENDER, testrigs)
    _check("rigify (generated)/t_pose", errors, list(bone_map.joints.values()))
    # The deforming bones follow the keyed FK controls.
    deform = testrigs.world_bone_directions(rig, ["DEF-forearm.L", "forearm_fk.L"])
    assert np.degrees(np.arccos(np.clip(deform[0] @ deform[1], -1, 1))) < 3.0


@pytest.mark.parametrize(("variant", "a_pose", "global_scale", "object_scale"), [
    ("cm", 0.0, 1.0, 1.0),
    ("a_pose_cm", 40.0, 1.0, 1.0),
    ("object_scale_0.01", 0.0, 1.0, 0.01),
])
def test_a_bvh_imported_by_blenders_importer_follows_the_canonical_motion(
    scene, testrigs, cached_generate, tmp_path, variant, a_pose, global_scale, object_scale,
):
    rig = testrigs.import_beat_bvh(tmp_path / "beat_take.bvh", a_pose=a_pose, global_scale=global_scale)
    rig.scale = (object_scale,) * 3
    assert {pb.rotation_mode for pb in rig.pose.bones} == {"ZXY"}  # the file's channel order, as Euler
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    assert bone_map.preset == "beat" and len(bone_map.joints) == 52
    errors = direction_errors(rig, bone_map, cached_generate.motion, CANONICAL_TO_BLENDER, testrigs)
    _check(f"beat BVH import/{variant}", errors, list(bone_map.joints.values()))


@pytest.mark.parametrize("source", ["mixamo", "ue5"])
def test_unknown_bone_names_are_mapped_by_topology(scene, testrigs, cached_generate, source):
    rigspecs = testrigs.rigspecs
    spec = rigspecs.renamed(rigspecs.SPECS[source](a_pose=30.0), seed=7)
    rig = testrigs.build_spec(spec, roll_seed=11)
    _setup(scene, rig)
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    assert bone_map.method == "topology"
    assert "mapped by topology" in bone_map.describe()
    for joint in ("pelvis", "head", "left_shoulder", "left_elbow", "left_wrist", "right_wrist", "left_thumb1",
                  "right_index3", "left_knee"):
        assert bone_map.joints[joint] == spec.expected[joint], joint
    errors = direction_errors(rig, bone_map, cached_generate.motion, spec.facing, testrigs)
    _check(f"unknown names ({source} by topology)", errors, list(bone_map.joints.values()))


def test_a_rig_nothing_can_map_reports_what_is_missing_and_works_when_mapped_by_hand(scene, testrigs, monkeypatch):
    """An upper-body rig with random names: no preset matches and topology finds no hips (no legs). The
    report says what is missing; filling the mapping table in code makes generation work (the real engine)."""
    results = []
    real_generate = scene_inputs.generate

    def recording(request, progress=None):
        results.append(real_generate(request, progress))
        return results[-1]

    monkeypatch.setattr(scene_inputs, "generate", recording)
    rigspecs = testrigs.rigspecs
    spec = rigspecs.bust(seed=3)
    rig = testrigs.build_spec(spec, rotation_mode="XZY", roll_seed=2)
    _setup(scene, rig)
    with pytest.raises(RigError) as err:
        rig_bone_map(rig)
    message = str(err.value)
    for expected in ("no bones found for pelvis, neck, head, left_shoulder", "no hips",
                     "Map the bones by hand"):
        assert expected in message
    with pytest.raises(RuntimeError, match="no bones found for pelvis"):  # the operator's error report
        bpy.ops.gestura.generate()
    assert "no bones found for pelvis" in scene.gestura.status
    assert rig.animation_data is None or rig.animation_data.action is None

    mapping = rig.gestura_mapping
    for joint, bone in spec.expected.items():
        item = mapping.joints.add()
        item.name, item.bone = joint, bone
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    bone_map = rig_bone_map(rig)
    assert bone_map.method == "manual" and bone_map.joints == {j: spec.expected[j] for j in bone_map.joints}
    assert "hips and legs" in bone_map.describe()  # legs unmapped, reported as such
    assert len(results) == 1  # the engine ran once: for the mapped rig, not for the unmapped one
    errors = direction_errors(rig, bone_map, results[0].motion, spec.facing, testrigs)
    _check("upper-body rig, manual mapping", errors, list(bone_map.joints.values()))


def test_manual_mapping_overrides_detection_and_root_motion_can_be_off(scene, testrigs, cached_generate):
    """On a Mixamo rig, a manual table that swaps nothing but drops the fingers and the root motion:
    generation follows the table (no finger keys, no location keys)."""
    rigspecs = testrigs.rigspecs
    spec = rigspecs.mixamo()
    rig = testrigs.build_spec(spec)
    _setup(scene, rig)
    mapping = rig.gestura_mapping
    from gestura.mapping_properties import fill

    fill(mapping, {j: b for j, b in spec.expected.items() if PART_OF_JOINT[j] not in ("left_hand", "right_hand")})
    mapping.root_motion = False
    assert bpy.ops.gestura.generate() == {"FINISHED"}, scene.gestura.status
    paths = {fc.data_path for fc in _fcurves(rig)}
    assert not any("HandIndex" in p for p in paths)
    assert not any(p.endswith(".location") for p in paths)
    bone_map = rig_bone_map(rig)
    errors = direction_errors(rig, bone_map, cached_generate.motion, spec.facing, testrigs)
    _check("mixamo, manual mapping without fingers", errors, list(bone_map.joints.values()))

    mapping.use_manual = False  # back to detection: fingers and root motion switch follow the rig again
    assert len(rig_bone_map(rig).joints) == 52


def test_mapping_operators_detect_mirror_save_load_clear(scene, testrigs, tmp_path):
    rigspecs = testrigs.rigspecs
    spec = rigspecs.vroid()
    rig = testrigs.build_spec(spec)
    _setup(scene, rig)
    mapping = rig.gestura_mapping
    assert bpy.ops.gestura.mapping_detect() == {"FINISHED"}
    assert len(mapping.joints) == 52 and mapping.use_manual
    assert mapping.joints["left_wrist"].bone == "J_Bip_L_Hand"
    assert "VRoid" in mapping.report

    for item in mapping.joints:  # clear the right side, mirror it back from the left
        if item.name.startswith("right_"):
            item.bone = ""
    assert bpy.ops.gestura.mapping_mirror() == {"FINISHED"}
    assert mapping.joints["right_wrist"].bone == "J_Bip_R_Hand"
    assert mapping.joints["right_thumb2"].bone == "J_Bip_R_Thumb2"

    mapping.preset_name = "vroid girl"
    assert bpy.ops.gestura.mapping_save() == {"FINISHED"}
    saved = tmp_path / "presets" / "vroid girl.json"
    data = json.loads(saved.read_text())
    assert data["format"] == "gestura-bone-map" and data["joints"]["head"] == "J_Bip_C_Head"

    assert bpy.ops.gestura.mapping_clear() == {"FINISHED"}
    assert len(mapping.joints) == 0
    assert bpy.ops.gestura.mapping_load(preset="user:vroid girl") == {"FINISHED"}
    assert mapping.joints["right_elbow"].bone == "J_Bip_R_LowerArm" and mapping.use_manual

    # A preset saved on one rig loads onto another with the same names spelled differently.
    other = testrigs.build_spec(_respelled(rigspecs.vroid()))
    scene.gestura.rig = other
    assert bpy.ops.gestura.mapping_load(preset="user:vroid girl") == {"FINISHED"}
    assert other.gestura_mapping.joints["left_wrist"].bone == "j_bip_l_hand"

    # Gestura's own presets load too, matched to the rig's names.
    scene.gestura.rig = rig
    assert bpy.ops.gestura.mapping_load(preset="rig:vroid") == {"FINISHED"}
    assert mapping.joints["left_index3"].bone == "J_Bip_L_Index3"


def _respelled(spec):
    for b in spec.bones:
        old = b.name
        b.name = old.lower()
        b.parent = b.parent.lower() if b.parent else None
    spec.expected = {j: n.lower() for j, n in spec.expected.items()}
    return spec


def test_accuracy_table():
    """Prints the per-rig accuracy table (run with -s to see it)."""
    if not RESULTS:
        pytest.skip("no accuracy results in this run")
    lines = ["", f"{'rig / variant':44s} {'median':>8s} {'p95':>8s} {'bones':>6s}"]
    for name, (median, p95, n) in RESULTS.items():
        lines.append(f"{name:44s} {median:8.3f} {p95:8.3f} {n:6d}")
    print("\n".join(lines))


class _FakeLayout:
    """Records what a panel draws and checks every property and operator it names exists."""

    def __init__(self, log: list):
        self.log = log

    def _child(self, *_args, **_kwargs):
        return _FakeLayout(self.log)

    row = column = box = _child

    def panel(self, idname, default_closed=False):
        self.log.append(("panel", idname))
        return _FakeLayout(self.log), _FakeLayout(self.log)

    def label(self, text="", **_kwargs):
        self.log.append(("label", text))

    def separator(self, **_kwargs):
        pass

    def prop(self, data, prop, **_kwargs):
        assert prop in data.bl_rna.properties, prop
        self.log.append(("prop", prop))

    def prop_search(self, data, prop, search_data, search_prop, **_kwargs):
        assert prop in data.bl_rna.properties and search_prop in search_data.bl_rna.properties
        self.log.append(("prop_search", getattr(data, "name", ""), getattr(data, prop)))

    def operator(self, idname, **_kwargs):
        module, name = idname.split(".")
        assert name in dir(getattr(bpy.ops, module)), idname
        self.log.append(("operator", idname))

    def operator_menu_enum(self, idname, prop, **_kwargs):
        module, name = idname.split(".")
        op = getattr(getattr(bpy.ops, module), name)
        assert prop in op.get_rna_type().properties, (idname, prop)
        self.log.append(("menu", idname))


def test_the_bone_mapping_panel_draws_pickers_grouped_by_body_part(scene, testrigs):
    from types import SimpleNamespace

    from gestura.panels.mapping_panel import GESTURA_PT_mapping

    rig = testrigs.build_spec(testrigs.rigspecs.mixamo())
    _setup(scene, rig)

    def draw() -> list:
        log: list = []
        GESTURA_PT_mapping.draw(SimpleNamespace(layout=_FakeLayout(log)), bpy.context)
        return log

    log = draw()
    assert ("operator", "gestura.mapping_detect") in log and ("menu", "gestura.mapping_load") in log
    assert ("label", "Bones are detected when generating.") in log
    assert bpy.ops.gestura.mapping_detect() == {"FINISHED"}
    log = draw()
    pickers = [e for e in log if e[0] == "prop_search"]
    assert len(pickers) == 52 and ("prop_search", "left_wrist", "mixamorig:LeftHand") in pickers
    assert [e[1] for e in log if e[0] == "panel"] == [
        "gestura_mapping_torso", "gestura_mapping_left_arm", "gestura_mapping_right_arm",
        "gestura_mapping_left_hand", "gestura_mapping_right_hand", "gestura_mapping_legs"]
    assert ("operator", "gestura.mapping_mirror") in log and ("prop", "use_manual") in log


def test_auto_detect_on_a_rig_it_cannot_map_fills_what_it_found_and_says_what_is_missing(scene, testrigs):
    spec = testrigs.rigspecs.bust(seed=5)
    rig = testrigs.build_spec(spec)
    _setup(scene, rig)
    assert bpy.ops.gestura.mapping_detect() == {"FINISHED"}  # a warning, not an error: the table is a start
    mapping = rig.gestura_mapping
    assert len(mapping.joints) == 52 and "no bones found for pelvis" in mapping.report
    assert not any(item.bone for item in mapping.joints)  # nothing guessed wrong: nothing could be found
    mapping.joints["head"].bone = spec.expected["head"]
    mapping.preset_name = "../outside"
    with pytest.raises(RuntimeError, match="Preset names use"):
        bpy.ops.gestura.mapping_save()


def test_presets_live_in_the_extensions_user_folder(monkeypatch, tmp_path):
    from gestura import mapping_properties

    monkeypatch.delenv("GESTURA_PRESETS_DIR")
    path = bpy.utils.extension_path_user("bl_ext.user_default.gestura", path="presets", create=False)
    assert path.replace("\\", "/").endswith(".user/user_default/gestura/presets")
    calls = []

    def fake(package, *, path="", create=False):
        calls.append((package, path, create))
        return str(tmp_path / "ext_user" / path)

    monkeypatch.setattr(bpy.utils, "extension_path_user", fake)
    monkeypatch.setattr(mapping_properties, "__package__", "bl_ext.user_default.gestura")
    assert mapping_properties.presets_dir() == tmp_path / "ext_user" / "presets"
    assert calls == [("bl_ext.user_default.gestura", "presets", True)]
