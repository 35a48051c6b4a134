"""Fixtures for tests that run inside real bpy (5.0.1 in .venv, 4.5 LTS in .venv-bpy45)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="integration tests run in the bpy venvs made by tools/bootstrap.py")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_WAV = ROOT / "examples" / "speech" / "hello.wav"


def _load_tool(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def testrigs():
    return _load_tool("testrigs")


@pytest.fixture
def scene():
    """An empty scene with Gestura registered, as after installing and enabling the extension."""
    import gestura

    bpy.ops.wm.read_factory_settings(use_empty=True)
    gestura.register()
    try:
        yield bpy.context.scene
    finally:
        gestura.unregister()


@pytest.fixture(scope="session")
def speech_with_pause(tmp_path_factory) -> Path:
    """The example speech, 3 s of silence, then the speech again: gestures must stop in the pause."""
    import soundfile as sf

    data, sr = sf.read(EXAMPLE_WAV, dtype="float32")
    path = tmp_path_factory.mktemp("audio") / "speech_pause.wav"
    sf.write(path, np.concatenate([data, np.zeros(3 * sr, np.float32), data]), sr)
    return path


def scene_snapshot(scene) -> dict:
    """What a failed generation must leave untouched."""
    snap = {
        "actions": sorted(a.name for a in bpy.data.actions),
        "objects": sorted(o.name for o in bpy.data.objects),
        "frame": scene.frame_current,
    }
    for obj in scene.objects:
        if obj.type == "ARMATURE":
            ad = obj.animation_data
            snap[obj.name] = {
                "action": ad.action.name if ad and ad.action else None,
                "pose": [tuple(pb.rotation_quaternion) + tuple(pb.rotation_euler) + tuple(pb.location)
                         for pb in obj.pose.bones],
            }
    return snap
