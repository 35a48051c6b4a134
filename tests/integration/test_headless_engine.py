"""headless.py's engine flags: checked before anything runs, with a message that says what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLE_WAV, ROOT

bpy = pytest.importorskip("bpy")


@pytest.fixture
def scene_file(scene, testrigs, tmp_path):
    testrigs.build_canonical_rig("Presenter", "smplx")
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "headless.py"), "--", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--engine", "magic"], "Unknown engine 'magic'; available: diffusion, rule"),
        (["--part-strength", "tail=2"], "the part is one of head, torso, arms, hands, lower_body"),
        (["--part-strength", "arms=lots"], "the value is a number"),
        (["--style-guidance", "-1"], "--style-guidance -1: the value is between 0 and 4"),
        (["--style-guidance", "nan"], "--style-guidance nan: the value is between 0 and 4"),
        (["--strength", "9"], "--strength 9: the value is between 0 and 6"),
        (["--part-strength", "arms=7"], "--part-strength arms=7: the value is between 0 and 6"),
        (["--steps", "-3"], "--steps -3: the value is between 0 and 1000"),
    ],
)
def test_bad_engine_flags_exit_2_with_the_allowed_values(scene_file, tmp_path, flags, message):
    out = tmp_path / "never.blend"
    proc = _run("--scene", str(scene_file), "--audio", str(EXAMPLE_WAV), *flags, "--out", str(out))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False
    assert not out.exists()


def test_part_strengths_reach_the_settings_and_the_rule_engine_runs(scene_file, tmp_path):
    out = tmp_path / "result.blend"
    proc = _run("--scene", str(scene_file), "--audio", str(EXAMPLE_WAV), "--engine", "rule", "--strength", "3",
                "--part-strength", "arms=5", "--part-strength", "head=0.5", "--steps", "8", "--style-guidance", "0.5",
                "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["engine"] == "rule"
    bpy.ops.wm.open_mainfile(filepath=str(out))
    settings = bpy.context.scene.gestura
    assert settings.use_part_strength and settings.sampler_steps == 8 and settings.style_guidance == 0.5
    assert (settings.style_strength, settings.strength_arms, settings.strength_head, settings.strength_torso) == \
        pytest.approx((3.0, 5.0, 0.5, 3.0))
