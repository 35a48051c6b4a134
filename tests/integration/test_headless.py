"""The pipeline entry script, run the way a TD runs it: a separate process, a JSON line, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLE_WAV, ROOT

bpy = pytest.importorskip("bpy")
SRT = ROOT / "examples" / "speech" / "hello.srt"


@pytest.fixture
def scene_file(scene, testrigs, tmp_path):
    testrigs.build_canonical_rig("Presenter", "mixamo", fbx_units=True, rotation_mode="XYZ")
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "headless.py"), "--", *args], capture_output=True, text=True, timeout=300,
        check=False,
    )


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_headless_generates_saves_and_reports(scene_file, tmp_path):
    """The default engine (diffusion) where torch is installed; the rule engine in the Blender 4.5 test venv,
    which has no torch."""
    out, bvh, summary_file = tmp_path / "result.blend", tmp_path / "result.bvh", tmp_path / "summary.json"
    engine = [] if _has_torch() else ["--engine", "rule"]
    proc = _run("--scene", str(scene_file), "--rig", "Presenter", "--audio", str(EXAMPLE_WAV),
                "--transcript", str(SRT), "--style", "calm teacher", "--start-frame", "12",
                "--out", str(out), "--bvh", str(bvh), "--json", str(summary_file), *engine)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = _last_json(proc.stdout)
    assert summary["engine"] == ("diffusion" if _has_torch() else "rule")
    assert summary["ok"] and summary["rig"] == "Presenter" and summary["start_frame"] == 12
    assert summary["words"] >= 20 and summary["mapped_bones"] == 52
    assert json.loads(summary_file.read_text()) == summary
    assert bvh.read_text().startswith("HIERARCHY")
    with bpy.data.libraries.load(str(out)) as (data_from, _data_to):
        assert summary["action"] in data_from.actions


def test_headless_bad_audio_exits_2_and_writes_nothing(scene_file, tmp_path):
    out = tmp_path / "never.blend"
    proc = _run("--scene", str(scene_file), "--audio", str(tmp_path / "missing.wav"), "--out", str(out))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "missing.wav" in proc.stderr
    assert _last_json(proc.stdout) == {"ok": False, "error": _last_json(proc.stdout)["error"]}
    assert not out.exists()


def test_headless_unknown_rig_name_lists_the_armatures(scene_file):
    proc = _run("--scene", str(scene_file), "--rig", "Nobody", "--audio", str(EXAMPLE_WAV))
    assert proc.returncode == 2
    assert "Presenter" in proc.stderr


def test_headless_without_arguments_prints_usage_and_exits_2():
    proc = _run()
    assert proc.returncode == 2
    assert "--audio" in proc.stderr
