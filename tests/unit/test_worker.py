"""The inference worker process and its client: the real worker (inference/worker.py) in a real subprocess,
running the real rule-based engine on the bundled example speech.

Timing figures (poll latency percentiles, job overhead against in-process) come from tools/bench_worker.py;
the bounds here are loose on purpose (a busy 2-core CI machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.errors import InputError
from gestura.inference.pipeline import EngineOptions, GenerationRequest, generate
from gestura.inference.worker_client import (
    ErrorEvent,
    ProgressEvent,
    ResultEvent,
    WorkerClient,
    WorkerCrashedError,
    WorkerStartError,
    from_plain,
    read_frame,
    request_from_plain,
    request_to_plain,
    to_plain,
    write_frame,
)

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "examples" / "speech"
EXAMPLE_WAV = SPEECH / "hello.wav"
SRT = SPEECH / "hello.srt"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def client():
    worker = WorkerClient(env=ONE_THREAD)
    yield worker
    worker.shutdown()


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> Path:
    """About 90 s of speech (the example repeated): a job that runs for a few seconds, to cancel or kill."""
    import soundfile as sf

    data, sr = sf.read(EXAMPLE_WAV, dtype="float32")
    gap = np.zeros(sr // 2, np.float32)
    path = tmp_path_factory.mktemp("speech") / "long.wav"
    sf.write(path, np.concatenate([data, gap] * 8), sr)
    return path


def _request(**kw) -> GenerationRequest:
    args = {"audio_path": str(EXAMPLE_WAV), "transcript_path": str(SRT), "style_prompt": "calm teacher; arms: angry",
            "engine": "rule", "seed": 3}
    args.update(kw)
    return GenerationRequest(**args)


def _run(client: WorkerClient, request: GenerationRequest, timeout: float = 120.0) -> tuple[list, object]:
    """Submits and polls until the job ends: (progress events, ResultEvent or ErrorEvent)."""
    job = client.submit(request)
    progress = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.poll(timeout=0.05):
            assert event.job == job
            if isinstance(event, ProgressEvent):
                progress.append(event)
            else:
                return progress, event
    raise AssertionError("the job did not end in time")


def _wait_for_progress(client: WorkerClient, timeout: float = 60.0) -> ProgressEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.poll(timeout=0.05):
            assert isinstance(event, ProgressEvent), f"the job ended early: {event}"
            return event
    raise AssertionError("no progress from the worker")


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie still answers kill(pid, 0): it is gone once its parent has reaped it
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------------------------
# Protocol


def test_plain_values_and_arrays_cross_unchanged():
    value = {
        "rot": np.arange(24, dtype=np.float64).reshape(2, 3, 4),
        "mask": np.array([True, False]),
        "events": [{"t": 0.5, "hold": [0.1, None]}, (0.3, "nod")],
        "by_id": {3: "three", "$odd": 1},
        "nested": ((1, 2), [np.int64(7), np.float32(0.25)]),
        "nan": float("nan"),
    }
    arrays: list[np.ndarray] = []
    plain = to_plain(value, arrays)
    assert len(arrays) == 2
    import io

    stream = io.BytesIO()
    write_frame(stream, {"type": "x", "value": plain}, arrays)
    stream.seek(0)
    header, got_arrays = read_frame(stream)
    assert read_frame(stream) is None  # end of stream between frames
    back = from_plain(header["value"], got_arrays)
    assert np.array_equal(back["rot"], value["rot"]) and back["rot"].dtype == np.float64
    assert np.array_equal(back["mask"], value["mask"])
    assert back["events"] == [{"t": 0.5, "hold": [0.1, None]}, (0.3, "nod")]
    assert back["by_id"] == {3: "three", "$odd": 1}
    assert back["nested"] == ((1, 2), [7, 0.25])
    assert np.isnan(back["nan"])


def test_only_arrays_and_plain_values_cross():
    with pytest.raises(TypeError, match="cannot cross"):
        to_plain({"path": Path("x")}, [])
    with pytest.raises(TypeError, match="objects"):
        to_plain(np.array([object()]), [])


def test_a_request_crosses_with_its_engine_options():
    request = GenerationRequest(
        audio_path="/a.wav", audio_offset_s=0.5, audio_duration_s=None,
        transcript_segments=[("Hello there.", 0.0, 1.0), ("Bye.", 1.5, 2.0)], style_prompt="calm; arms: angry",
        engine="diffusion", seed=9,
        options=EngineOptions(part_strength={"head": 1.0, "left_arm": 3.5}, strength=2.5, steps=12, device="cpu"),
    )
    arrays: list[np.ndarray] = []
    assert request_from_plain(request_to_plain(request, arrays), arrays) == request


# ---------------------------------------------------------------------------------------------------------------
# The worker process


def test_worker_result_equals_in_process_with_progress_and_the_process_is_reused(client):
    request = _request()
    progress, end = _run(client, request)
    assert isinstance(end, ResultEvent), end
    info = client.info
    assert info["python"] == sys.executable
    assert info["loaded"] == {"bpy": False, "torch": False, "extension_init": False}

    texts = [p.text for p in progress]
    assert texts[0] == "Reading audio" and texts[-1] == "Done" and "Generating gestures" in texts
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    ref = generate(request)
    got = end.result
    assert np.array_equal(got.motion.rotations, ref.motion.rotations)
    assert np.array_equal(got.motion.root, ref.motion.root)
    assert got.motion.fps == ref.motion.fps and got.motion.meta == ref.motion.meta
    assert got.words == ref.words and len(got.words) > 20
    assert got.style_explanation == ref.style_explanation and got.warnings == ref.warnings
    assert set(got.timings) == set(ref.timings)

    pid = client.pid
    _progress, again = _run(client, _request(seed=4))
    assert isinstance(again, ResultEvent) and client.pid == pid  # same process: loaded models stay loaded
    assert not np.array_equal(again.result.motion.rotations, got.motion.rotations)


def test_poll_never_blocks_while_a_job_runs(client, long_speech):
    client.submit(_request(audio_path=str(long_speech), transcript_path=None))
    durations, ended = [], None
    deadline = time.monotonic() + 120
    while ended is None and time.monotonic() < deadline:
        t = time.perf_counter()
        events = client.poll()
        durations.append(time.perf_counter() - t)
        ended = next((e for e in events if not isinstance(e, ProgressEvent)), None)
        time.sleep(0.005)
    assert isinstance(ended, ResultEvent), ended
    assert ended.result.motion.num_frames > 80 * 30
    assert len(durations) > 20
    assert max(durations) < 0.020, f"slowest poll {max(durations) * 1000:.1f} ms"


def test_cancel_mid_job_is_immediate_and_the_next_job_works(client, long_speech):
    client.submit(_request(audio_path=str(long_speech), transcript_path=None))
    _wait_for_progress(client)
    pid = client.pid
    assert pid is not None and client.busy
    t = time.perf_counter()
    client.cancel()
    took = time.perf_counter() - t
    assert took < 0.2, f"cancel took {took:.3f} s"
    assert not client.busy and client.poll() == []
    assert _gone(pid), "the cancelled worker process is still running"

    _progress, end = _run(client, _request())
    assert isinstance(end, ResultEvent)
    assert client.pid not in (None, pid)  # a new process, started lazily by the next job


def test_a_killed_worker_gives_a_clear_error_and_a_new_one_starts(client, long_speech):
    client.submit(_request(audio_path=str(long_speech), transcript_path=None))
    _wait_for_progress(client)
    pid = client.pid
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
    _progress, end = _run_to_end(client)
    assert isinstance(end, ErrorEvent) and isinstance(end.error, WorkerCrashedError)
    message = str(end.error)
    assert "stopped unexpectedly" in message and "exit code -9" in message and "SIGKILL" in message
    assert not client.busy

    _progress, end = _run(client, _request())
    assert isinstance(end, ResultEvent) and client.pid != pid


def _run_to_end(client: WorkerClient, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    progress = []
    while time.monotonic() < deadline:
        for event in client.poll(timeout=0.05):
            if isinstance(event, ProgressEvent):
                progress.append(event)
            else:
                return progress, event
    raise AssertionError("the job did not end in time")


def test_a_missing_audio_file_is_an_input_error_and_the_worker_lives_on(client, tmp_path):
    client.start()
    pid = client.pid
    missing = tmp_path / "nope.wav"
    _progress, end = _run(client, _request(audio_path=str(missing)))
    assert isinstance(end, ErrorEvent)
    assert type(end.error) is InputError  # the same class as in this process
    assert "not found" in str(end.error) and str(missing) in str(end.error)
    assert client.pid == pid
    with pytest.raises(InputError, match="not found"):
        client.generate(_request(audio_path=str(missing)))


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_diffusion_with_no_model_in_the_model_folder_says_so(client, tmp_path, folder):
    model_dir = tmp_path / folder
    if folder == "empty":
        model_dir.mkdir()
    request = _request(engine="diffusion", options=EngineOptions(model_dir=str(model_dir), device="cpu"))
    with pytest.raises(InputError) as info:
        client.generate(request, timeout=300)
    assert str(model_dir) in str(info.value) and "model" in str(info.value)


def test_blocking_generate_reports_progress_and_a_false_progress_cancels(client, long_speech):
    seen = []
    result = client.generate(_request(), progress=lambda f, t: seen.append((f, t)))
    assert result.motion.num_frames > 0 and seen[-1] == (1.0, "Done")
    from gestura.inference.errors import CancelledError

    with pytest.raises(CancelledError):
        client.generate(_request(audio_path=str(long_speech), transcript_path=None), progress=lambda f, t: False)
    assert not client.busy


# ---------------------------------------------------------------------------------------------------------------
# The Python for the model


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """A Python with nothing installed (a venv of this interpreter's base Python, without pip)."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    return str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def test_a_python_that_cannot_run_the_worker_says_what_is_missing(bare_python):
    worker = WorkerClient(bare_python, extra_sys_path=[])
    try:
        worker.submit(_request())
        _progress, end = _run_to_end(worker)
    finally:
        worker.shutdown()
    assert isinstance(end, ErrorEvent) and isinstance(end.error, WorkerStartError)
    message = str(end.error)
    assert bare_python in message and "'numpy'" in message and "Python for the model" in message


def test_a_python_that_is_not_there_says_so():
    worker = WorkerClient("/nonexistent/bin/python3")
    with pytest.raises(WorkerStartError, match=r"not found.*Python for the model"):
        worker.submit(_request())
    assert not worker.busy


@pytest.mark.skipif(os.name == "nt", reason="the stand-in interpreter is a shell script")
def test_a_dying_interpreter_gives_its_exit_code_and_error_output(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 7\n")
    fake.chmod(0o755)
    worker = WorkerClient(str(fake))
    worker.submit(_request())
    _progress, end = _run_to_end(worker)
    assert isinstance(end, ErrorEvent) and isinstance(end.error, WorkerCrashedError)
    assert "exit code 7" in str(end.error) and "Fatal Python error: init_fs_encoding" in str(end.error)


BPY45_PYTHON = ROOT / ".venv-bpy45" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.mark.skipif(not BPY45_PYTHON.exists(), reason="needs .venv-bpy45 (tools/bootstrap.py): a Python without torch")
def test_a_python_without_torch_runs_the_rule_engine_and_names_torch_for_diffusion():
    import importlib.util

    probe = subprocess.run([str(BPY45_PYTHON), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, check=True)
    if probe.stdout.strip() != "True":
        pytest.skip(".venv-bpy45 has torch")
    assert importlib.util.find_spec("torch") is not None  # this Python has it: the worker's must not borrow it
    worker = WorkerClient(str(BPY45_PYTHON), extra_sys_path=[], env=ONE_THREAD)
    try:
        result = worker.generate(_request(), timeout=300)
        assert result.motion.num_frames > 0 and worker.info["torch"] is False
        with pytest.raises(InputError) as info:
            worker.generate(_request(engine="diffusion"), timeout=300)
    finally:
        worker.shutdown()
    message = str(info.value)
    assert "PyTorch" in message and str(BPY45_PYTHON) in message and "Python for the model" in message
