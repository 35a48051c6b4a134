"""register() is fast, imports no torch, and register/unregister can be repeated.

Runs in a fresh interpreter (so the timing is honest and no other test has imported torch or the
add-on's modules already), loading the repository as the package ``gestura`` the way tests/conftest.py does.
``import bpy`` happens first and is not timed: Blender has it loaded before any add-on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGISTER_BUDGET_S = 0.100
HEAVY_MODULES = ("torch", "librosa", "numba", "scipy", "sklearn", "soundfile", "pocketsphinx")

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys, time
    from pathlib import Path

    import bpy  # not timed: Blender has it loaded before any add-on registers

    root = Path(os.environ["GESTURA_ROOT"])
    out = {}
    t0 = time.perf_counter()
    spec = importlib.util.spec_from_file_location(
        "gestura", root / "__init__.py", submodule_search_locations=[str(root)]
    )
    gestura = importlib.util.module_from_spec(spec)
    sys.modules["gestura"] = gestura
    spec.loader.exec_module(gestura)
    t1 = time.perf_counter()
    gestura.register()
    t2 = time.perf_counter()
    out["import_s"] = t1 - t0
    out["register_s"] = t2 - t1
    out["heavy_after_register"] = [m for m in json.loads(os.environ["GESTURA_HEAVY"]) if m in sys.modules]
    out["scene_prop_1"] = hasattr(bpy.types.Scene, "gestura")
    out["operator_1"] = "generate" in dir(bpy.ops.gestura)

    gestura.unregister()
    out["scene_prop_after_unregister"] = hasattr(bpy.types.Scene, "gestura")
    gestura.register()
    out["scene_prop_2"] = hasattr(bpy.types.Scene, "gestura")
    out["operator_2"] = "generate" in dir(bpy.ops.gestura)
    bpy.context.scene.gestura.style_prompt = "works after re-register"
    gestura.unregister()
    out["scene_prop_after_unregister_2"] = hasattr(bpy.types.Scene, "gestura")
    out["torch_at_end"] = "torch" in sys.modules
    print("RESULT " + json.dumps(out))
    sys.stdout.flush()
    os._exit(0)
    """
)


def _run_once() -> dict:
    env = dict(os.environ, GESTURA_ROOT=str(ROOT), GESTURA_HEAVY=json.dumps(HEAVY_MODULES))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def test_register_fast_lazy_and_repeatable() -> None:
    runs = [_run_once()]
    # One retry in a fresh interpreter: a busy CI machine (or a first-ever .pyc compile) can spike one run.
    if runs[0]["register_s"] >= REGISTER_BUDGET_S:
        runs.append(_run_once())
    best = min(runs, key=lambda r: r["register_s"])
    timings = ", ".join(f"{r['register_s'] * 1000:.1f} ms" for r in runs)
    assert best["register_s"] < REGISTER_BUDGET_S, f"register() took {timings} (budget 100 ms)"
    for run in runs:
        assert "torch" not in run["heavy_after_register"], "register() imported torch"
        assert not run["heavy_after_register"], f"register() imported heavy modules: {run['heavy_after_register']}"
        assert run["scene_prop_1"] and run["operator_1"]
        assert not run["scene_prop_after_unregister"]
        assert run["scene_prop_2"] and run["operator_2"]
        assert not run["scene_prop_after_unregister_2"]
        assert not run["torch_at_end"]
