"""Generation through the worker process in real Blender: the GenerationJob the modal operator drives from a
timer (start / poll / cancel / finish), here driven directly, with the real worker and the rule engine."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE_WAV, ROOT, scene_snapshot

bpy = pytest.importorskip("bpy")

from gestura.inference.errors import GesturaError, RigError  # noqa: E402
from gestura.inference.pipeline import EngineOptions  # noqa: E402
from gestura.inference.worker_client import WorkerClient, WorkerCrashedError  # noqa: E402
from gestura.operators.scene_inputs import GenerationJob, engine_options, generate_on_rig  # noqa: E402

SRT = ROOT / "examples" / "speech" / "hello.srt"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def client():
    worker = WorkerClient(env=ONE_THREAD)
    yield worker
    worker.shutdown()


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> Path:
    import soundfile as sf

    data, sr = sf.read(EXAMPLE_WAV, dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "long.wav"
    sf.write(path, np.concatenate([data, np.zeros(sr // 2, np.float32)] * 8), sr)
    return path


def _setup(scene, rig, audio=EXAMPLE_WAV, transcript=SRT):
    strip = scene.sequence_editor_create().strips.new_sound("speech", str(audio), 1, 1) \
        if scene.sequence_editor is None else scene.sequence_editor.strips.new_sound("speech", str(audio), 1, 1)
    settings = scene.gestura
    settings.rig = rig
    settings.audio_source = "STRIP"
    settings.sound_strip = strip.name
    if transcript is not None:
        settings.transcript_source = "FILE"
        settings.transcript_file = str(transcript)
    settings.style_prompt = "confident speaker"
    settings.engine = "rule"
    return strip


def _keys(action) -> dict[str, np.ndarray]:
    bag = action.layers[0].strips[0].channelbags[0]
    out = {}
    for fc in bag.fcurves:
        co = np.zeros(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        out[f"{fc.data_path}[{fc.array_index}]"] = co
    return out


def _run(job: GenerationJob, timeout: float = 120.0) -> tuple[str, list[float]]:
    """Polls the way the modal operator's timer does; returns the end state and each poll's duration."""
    durations = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = time.perf_counter()
        state = job.poll()
        durations.append(time.perf_counter() - t)
        if state != "running":
            return state, durations
        time.sleep(0.01)
    raise AssertionError("the job did not end in time")


def _wait_until_running_in_the_worker(job: GenerationJob) -> None:
    deadline = time.monotonic() + 60
    while job.poll(0.05) == "running" and job.fraction == 0.0 and job.text != "Reading audio":
        assert time.monotonic() < deadline, "no progress from the worker"
    assert job.state == "running"


def test_engine_defaults_to_diffusion_with_its_options(scene):
    settings = scene.gestura
    assert settings.engine == "diffusion"
    items = {i.identifier: i.name for i in settings.bl_rna.properties["engine"].enum_items}
    assert items == {"diffusion": "Diffusion (GestureDiffuCLIP)", "rule": "Rule-based (fast)"}
    strength = settings.bl_rna.properties["style_strength"]
    assert (strength.default, strength.hard_min, strength.hard_max) == (2.0, 0.0, 6.0)
    assert settings.sampler_steps == 0 and not settings.use_part_strength
    assert engine_options(settings) == EngineOptions(strength=2.0, part_strength={}, steps=0, style_guidance=1.0)

    settings.style_strength, settings.sampler_steps, settings.style_guidance = 3.5, 12, 0.0
    settings.use_part_strength = True
    settings.strength_arms, settings.strength_hands, settings.strength_head = 5.0, 0.5, 1.0
    options = engine_options(settings)
    assert options.strength == pytest.approx(3.5) and options.steps == 12 and options.style_guidance == 0.0
    assert options.part_strength["left_arm"] == options.part_strength["right_arm"] == pytest.approx(5.0)
    assert options.part_strength["left_hand"] == options.part_strength["right_hand"] == pytest.approx(0.5)
    assert options.part_strength["head"] == pytest.approx(1.0)
    assert options.part_strength["torso"] == options.part_strength["lower_body"] == pytest.approx(2.0)
    assert set(options.part_strength) == {"head", "torso", "left_arm", "right_arm", "left_hand", "right_hand",
                                          "lower_body"}


def test_a_job_lands_the_worker_motion_on_the_rig_like_the_in_process_path(scene, testrigs, client):
    rig = testrigs.build_canonical_rig("Presenter", "mixamo", a_pose=True, roll_seed=2, rotation_mode="XYZ")
    _setup(scene, rig)
    before = {a.name for a in bpy.data.actions}

    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    state, durations = _run(job)
    assert state == "done", job.error
    assert max(durations) < 0.020, f"slowest poll on the main thread: {max(durations) * 1000:.1f} ms"
    assert job.fraction == 1.0
    assert {a.name for a in bpy.data.actions} == before  # nothing written before finish()
    summary = job.finish()
    assert job.state == "finished"
    action = rig.animation_data.action
    assert action.name == summary["action"] and summary["words"] >= 20 and summary["mapped_bones"] == 52
    assert action["gestura_engine"] == "rule"

    # The same settings in this process (background mode's path) give the same keys.
    reference = generate_on_rig(scene, scene.gestura)
    assert reference["action"] != summary["action"]
    got, want = _keys(action), _keys(bpy.data.actions[reference["action"]])
    assert got.keys() == want.keys() and len(got) > 100
    for path in got:
        np.testing.assert_allclose(got[path], want[path], atol=1e-6, err_msg=path)


def test_cancel_leaves_the_scene_untouched(scene, testrigs, client, long_speech):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, long_speech, transcript=None)
    before = scene_snapshot(scene)
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    _wait_until_running_in_the_worker(job)
    t = time.perf_counter()
    job.cancel()
    assert time.perf_counter() - t < 0.2
    assert job.poll() == "cancelled"
    with pytest.raises(GesturaError, match="cancelled"):
        job.finish()
    assert scene_snapshot(scene) == before

    # The next job starts a new worker and works.
    job = GenerationJob(client)
    scene.gestura.audio_source, scene.gestura.audio_file = "FILE", str(EXAMPLE_WAV)
    job.start(scene, scene.gestura)
    assert job.wait(120) == "done"
    job.finish()
    assert rig.animation_data.action is not None


@pytest.mark.parametrize("change", ["deleted", "renamed"])
def test_a_rig_deleted_or_renamed_meanwhile_gets_nothing_and_a_clear_error(scene, testrigs, client, change):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig)
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    if change == "deleted":
        bpy.data.objects.remove(rig)
    else:
        rig.name = "Someone"
    actions = sorted(a.name for a in bpy.data.actions)
    assert job.wait(120) == "done"
    with pytest.raises(RigError, match=f"'Body' was {change}.*nothing was written"):
        job.finish()
    assert sorted(a.name for a in bpy.data.actions) == actions


def test_a_worker_that_dies_mid_job_fails_the_job_and_writes_nothing(scene, testrigs, client, long_speech):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, long_speech, transcript=None)
    before = scene_snapshot(scene)
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    _wait_until_running_in_the_worker(job)
    os.kill(client.pid, signal.SIGKILL)
    state, _durations = _run(job)
    assert state == "failed"
    with pytest.raises(WorkerCrashedError, match="exit code -9"):
        job.finish()
    assert scene_snapshot(scene) == before


def test_a_packed_sound_goes_through_the_worker_and_leaves_no_temporary_file(scene, testrigs, client, tmp_path):
    import shutil

    wav = tmp_path / "speech.wav"
    shutil.copy(EXAMPLE_WAV, wav)
    rig = testrigs.build_canonical_rig("Body", "smplx")
    strip = _setup(scene, rig, wav, transcript=None)
    strip.sound.pack()
    wav.unlink()
    temporary = set(Path(tempfile.gettempdir()).glob("gestura_*"))
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    assert job.wait(120) == "done"
    job.finish()
    assert rig.animation_data.action is not None
    assert set(Path(tempfile.gettempdir()).glob("gestura_*")) == temporary


def test_in_background_mode_the_operator_runs_in_this_process(scene, testrigs):
    assert bpy.app.background
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig)
    assert bpy.ops.gestura.generate("INVOKE_DEFAULT") == {"FINISHED"}  # no modal, no timer: synchronous
    assert rig.animation_data.action is not None
    from gestura.operators import generate

    assert generate.active_job() is None and generate._state.client is None  # no worker was started
    assert not bpy.context.window_manager.gestura_job.running


def test_loading_a_file_stops_a_running_generation(scene, testrigs, client, long_speech, tmp_path):
    from gestura.operators import generate

    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, long_speech, transcript=None)
    other = tmp_path / "other.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(other))
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    generate._state.active = job  # as the modal operator's invoke() leaves it
    bpy.context.window_manager.gestura_job.running = True
    assert not bpy.ops.gestura.generate.poll()
    bpy.ops.wm.open_mainfile(filepath=str(other))
    assert job.state == "cancelled" and generate.active_job() is None and client.pid is None
    assert not bpy.context.window_manager.gestura_job.running


class _Event:
    """The two fields of a Blender event that modal() reads."""

    def __init__(self, type_: str, value: str = "NOTHING") -> None:
        self.type, self.value = type_, value


def _operator_instance(job):
    """Background mode has no event loop, so Blender never calls modal() here: this stands in for the operator
    instance invoke() leaves behind (its job, no timer), with the class's own modal/_stop/_failed/_finished and
    report() recorded. Everything else is real: the worker, the job, the scene."""
    from gestura.operators.generate import GESTURA_OT_generate, _state

    class Instance:
        modal = GESTURA_OT_generate.modal
        _stop = GESTURA_OT_generate._stop
        _failed = GESTURA_OT_generate._failed
        _finished = GESTURA_OT_generate._finished

        def __init__(self) -> None:
            self._job, self._timer, self.reports = job, None, []

        def report(self, kind, message) -> None:
            self.reports.append((next(iter(kind)), message))

    _state.active = job
    bpy.context.window_manager.gestura_job.running = True
    return Instance()


def test_the_modal_operator_polls_on_timer_events_and_lands_the_motion(scene, testrigs, client):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig)
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    op = _operator_instance(job)
    assert op.modal(bpy.context, _Event("MOUSEMOVE")) == {"PASS_THROUGH"}  # the user keeps working
    deadline = time.monotonic() + 120
    while (result := op.modal(bpy.context, _Event("TIMER"))) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        wm_job = bpy.context.window_manager.gestura_job
        assert wm_job.running and wm_job.text == job.text
        time.sleep(0.02)
    assert result == {"FINISHED"}, op.reports
    assert rig.animation_data.action is not None
    assert scene.gestura.status.startswith(rig.animation_data.action.name)
    assert ("INFO", f"Gestura: {scene.gestura.status}") in op.reports
    from gestura.operators import generate

    assert generate.active_job() is None and not bpy.context.window_manager.gestura_job.running


def test_esc_in_the_modal_operator_cancels_and_writes_nothing(scene, testrigs, client, long_speech):
    rig = testrigs.build_canonical_rig("Body", "smplx")
    _setup(scene, rig, long_speech, transcript=None)
    before = scene_snapshot(scene)
    job = GenerationJob(client)
    job.start(scene, scene.gestura)
    op = _operator_instance(job)
    assert op.modal(bpy.context, _Event("TIMER")) == {"PASS_THROUGH"}
    assert op.modal(bpy.context, _Event("ESC", "PRESS")) == {"CANCELLED"}
    assert job.state == "cancelled" and client.pid is None
    assert scene.gestura.status == "Cancelled: nothing was written"
    assert scene_snapshot(scene) == before
