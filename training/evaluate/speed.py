"""Speed and cost: real-time factor against audio length and sampler steps, peak memory, the add-on's
register time and the key-writing time.

Every measurement of an engine runs in a fresh Python process (so its peak memory is its own): the process
loads the package, makes the test speech (test clips one after another), calls the engine once on 3 s of it
with default settings (model loading, JIT and caches: reported as ``first_call_s``), then times ``repeats``
calls of the configuration on the whole speech and reports the median. Real-time factor = audio seconds /
median wall seconds (higher is faster; 20x = 30 s of speech in 1.5 s). Timings include the audio features
(inference.audio.audio_features), as the add-on computes them. torch and the BLAS/OpenMP pools get
``threads`` threads.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_LOADER = (
    "import importlib.util, sys; from pathlib import Path\n"
    "root = Path(sys.argv[1])\n"
    "spec = importlib.util.spec_from_file_location('gestura', root / '__init__.py', "
    "submodule_search_locations=[str(root)])\n"
    "mod = importlib.util.module_from_spec(spec); sys.modules['gestura'] = mod; spec.loader.exec_module(mod)\n"
)
_WORKER = _LOADER + "from gestura.training.evaluate.speed import _worker_entry; _worker_entry(sys.argv[2])\n"

_REGISTER = (
    "import json, os, sys, time, importlib.util\n"
    "from pathlib import Path\n"
    "import bpy  # not timed: Blender has it loaded before any add-on registers\n"
    "root = Path(sys.argv[1])\n"
    "t0 = time.perf_counter()\n"
    "spec = importlib.util.spec_from_file_location('gestura', root / '__init__.py', "
    "submodule_search_locations=[str(root)])\n"
    "mod = importlib.util.module_from_spec(spec); sys.modules['gestura'] = mod; spec.loader.exec_module(mod)\n"
    "t1 = time.perf_counter(); mod.register(); t2 = time.perf_counter()\n"
    "print('RESULT ' + json.dumps({'import_s': t1 - t0, 'register_s': t2 - t1, "
    "'torch_imported': 'torch' in sys.modules}), flush=True)\n"
    "os._exit(0)\n"
)


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = str(threads)
    return env


def _result_line(stdout: str) -> dict[str, Any] | None:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else None


def _tail(text: str, n: int = 600) -> str:
    text = text.strip()
    return text[-n:] if text else ""


def _why(stderr: str, code: int) -> dict[str, str]:
    """The failure of a subprocess: its last line (the exception) as the reason, and the end of stderr."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return {"reason": lines[-1].strip() if lines else f"exit code {code}", "stderr_tail": _tail(stderr)}


def measure_engine(corpus: str | Path, engine: str, seconds: float, options: dict[str, Any] | None = None,
                   repeats: int = 3, threads: int = 1, device: str = "cpu", timeout: float = 1800.0,
                   eval_seed: int = 0) -> dict[str, Any]:
    """Real-time factor and peak memory of one configuration, in a fresh process."""
    opts = dict(options or {})
    if engine == "diffusion":
        opts.setdefault("device", device)
    cfg: dict[str, Any] = {"corpus": str(Path(corpus).resolve()), "engine": engine, "seconds": seconds, "options": opts,
                           "repeats": repeats, "threads": threads, "device": device, "seed": eval_seed}
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _WORKER, str(ROOT), json.dumps(cfg)], capture_output=True,
                              text=True, timeout=timeout, env=thread_env(threads), check=False)
    except subprocess.TimeoutExpired:
        return {**cfg, "available": False, "reason": f"timed out after {timeout:.0f} s"}
    res = _result_line(proc.stdout)
    if proc.returncode != 0 or res is None:
        return {**cfg, "available": False, **_why(proc.stderr, proc.returncode)}
    return {**cfg, **res, "process_wall_s": round(time.perf_counter() - t, 2)}


def _vm_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process in MB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the process's peak resident set (Linux: VmHWM through /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _worker_entry(cfg_json: str) -> None:
    cfg = json.loads(cfg_json)
    import numpy as np
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    from ...inference.pipeline import EngineOptions, generate_motion
    from .data import load_clips, long_speech
    from .engines import plain_meta

    clips = load_clips(cfg["corpus"], "test", limit=48)
    speech = long_speech(clips, float(cfg["seconds"]))
    audio, words = speech.audio_obj(), speech.word_objs()
    warm = long_speech(clips, 3.0)
    cuda = cfg["device"] == "cuda"
    # ru_maxrss survives exec on Linux (a child forked from a large parent reports the parent's size), so
    # peaks come from VmHWM, reset at each phase; ru_maxrss is the fallback elsewhere.
    resettable = _reset_peak() and _vm_mb("VmHWM") is not None
    rss_before = _vm_mb("VmRSS") if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    peaks = [rss_before or 0.0]
    t = time.perf_counter()
    # The warm-up loads the same model on the same device, with the model's default sampler.
    warm_opts = {k: cfg["options"][k] for k in ("device", "model_dir") if k in cfg["options"]}
    generate_motion(warm.audio_obj(), warm.word_objs(), warm.prompt, engine=cfg["engine"], seed=1,
                    options=EngineOptions(**warm_opts))
    if cuda:
        torch.cuda.synchronize()
    first_call = time.perf_counter() - t
    if resettable:
        peaks.append(_vm_mb("VmHWM") or 0.0)
        rss_loaded = _vm_mb("VmRSS") or 0.0
        _reset_peak()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    frames = 0
    engine_meta: dict[str, Any] = {}
    for k in range(int(cfg["repeats"])):
        t = time.perf_counter()
        motion, _ = generate_motion(audio, words, speech.prompt, engine=cfg["engine"], seed=int(cfg["seed"]) + k,
                                    options=EngineOptions(**cfg["options"]))
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        frames = motion.num_frames
        engine_meta = plain_meta(motion.meta)
        if not np.isfinite(motion.rotations).all():
            raise RuntimeError("the motion holds NaN values")
    med = statistics.median(times)
    if resettable:
        gen_peak = _vm_mb("VmHWM") or 0.0
        peaks.append(gen_peak)
        peak = max(peaks)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out: dict[str, Any] = {
        "available": True, "audio_s": speech.seconds, "frames": frames, "times_s": [round(x, 4) for x in times],
        "median_s": round(med, 4), "rtf": round(speech.seconds / med, 2), "first_call_s": round(first_call, 3),
        "peak_rss_mb": round(peak, 1),
        "rss_before_first_call_mb": round(rss_before or 0.0, 1), "torch_threads": torch.get_num_threads(),
        "peak_source": "VmHWM" if resettable else "ru_maxrss",
        "engine_meta": engine_meta,
    }
    out["peak_rss_increase_mb"] = round(max(peak - (rss_before or 0.0), 0.0), 1)
    if resettable:
        # The timed calls alone, over the process with the engine loaded and warm.
        out["rss_engine_loaded_mb"] = round(rss_loaded, 1)
        out["generation_peak_increase_mb"] = round(max(gen_peak - rss_loaded, 0.0), 1)
    if cuda:
        out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["cuda_device"] = torch.cuda.get_device_name()
    print("RESULT " + json.dumps(out), flush=True)


def measure_register(runs: int = 5, timeout: float = 300.0) -> dict[str, Any]:
    """The add-on's import + register() time in fresh interpreters with bpy loaded first (as
    tests/integration/test_register.py measures it), median of ``runs``."""
    results = []
    for _ in range(runs):
        try:
            proc = subprocess.run([sys.executable, "-c", _REGISTER, str(ROOT)], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"available": False, "reason": f"timed out after {timeout:.0f} s"}
        res = _result_line(proc.stdout)
        if res is None:
            return {"available": False, **_why(proc.stderr, proc.returncode)}
        results.append(res)
    return {"available": True, "runs": runs,
            "register_s_median": statistics.median(r["register_s"] for r in results),
            "import_s_median": statistics.median(r["import_s"] for r in results),
            "register_s": [round(r["register_s"], 5) for r in results],
            "torch_imported_by_register": any(r["torch_imported"] for r in results)}


def measure_key_writing(seconds: float = 30.0, repeats: int = 3, timeout: float = 1200.0) -> dict[str, Any]:
    """tools/bench_generate.py (Generate Gestures onto a Rigify rig, and key writing against a
    keyframe_insert loop, in one run); its JSON line."""
    cmd = [sys.executable, str(ROOT / "tools" / "bench_generate.py"), "--seconds", f"{seconds:g}",
           "--repeats", str(repeats)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=str(ROOT),
                              env=thread_env(1))
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"available": False, **_why(proc.stderr, proc.returncode),
                "command": f"tools/bench_generate.py --seconds {seconds:g} --repeats {repeats}"}
    return {"available": True, **json.loads(lines[-1]), "command": "tools/bench_generate.py --seconds "
            f"{seconds:g} --repeats {repeats}", "process_wall_s": round(time.perf_counter() - t, 1)}


def cuda_available() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if torch.cuda.is_available():
        return True, torch.cuda.get_device_name()
    return False, f"torch {torch.__version__} sees no CUDA device on this machine"


def run_speed(corpus: str | Path, *, lengths: tuple[float, ...] = (10.0, 30.0, 120.0),
              steps: tuple[int, ...] = (5, 10, 20, 50), ddpm_steps: int = 1000, repeats: int = 3,
              ddpm_repeats: int = 1, threads: int = 1, diffusion: bool = True, ddpm: bool = True, model_dir: str = "",
              register: bool = True, key_writing: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every speed figure of the report, measured in this run."""
    say = log or (lambda _m: None)
    extra = {"model_dir": model_dir} if model_dir else {}
    out: dict[str, Any] = {"threads": threads, "repeats": repeats, "cpu_count": os.cpu_count(),
                           "load_average_at_start": list(os.getloadavg()), "runs": []}
    runs = out["runs"]

    def add(label: str, engine: str, seconds: float, options: dict[str, Any], device: str = "cpu",
            reps: int = repeats) -> dict[str, Any]:
        say(f"speed: {label}, {seconds:g} s, {device}")
        r = measure_engine(corpus, engine, seconds, options, reps, threads, device)
        r["label"] = label
        runs.append(r)
        return r

    for s in lengths:
        add("rule", "rule", s, {})
    gpu, gpu_why = cuda_available()
    out["cuda"] = {"available": gpu, "device" if gpu else "reason": gpu_why}
    if diffusion:
        first = add("diffusion", "diffusion", lengths[0], dict(extra))
        if first.get("available"):
            for s in lengths[1:]:
                add("diffusion", "diffusion", s, dict(extra))
            for n in steps:
                add(f"diffusion dpm {n} steps", "diffusion", lengths[0], {"sampler": "dpm", "steps": n, **extra})
            if ddpm:
                add(f"diffusion ddpm {ddpm_steps} steps", "diffusion", lengths[0],
                    {"sampler": "ddpm", "steps": ddpm_steps, **extra}, reps=ddpm_repeats)
            if gpu:
                for s in lengths:
                    add("diffusion", "diffusion", s, dict(extra), device="cuda")
                if ddpm:
                    add(f"diffusion ddpm {ddpm_steps} steps", "diffusion", lengths[0],
                        {"sampler": "ddpm", "steps": ddpm_steps, **extra}, device="cuda", reps=ddpm_repeats)
        else:
            out["diffusion_unavailable"] = first.get("reason", "")
    if register:
        say("speed: add-on register time")
        out["register"] = measure_register()
    if key_writing:
        say("speed: key writing (tools/bench_generate.py)")
        out["key_writing"] = measure_key_writing()
    out["ratios"] = speed_ratios(runs, lengths, ddpm_steps)
    return out


def _find(runs: list[dict[str, Any]], label: str, seconds: float, device: str = "cpu") -> dict[str, Any] | None:
    for r in runs:
        if r.get("label") == label and r.get("seconds") == seconds and r.get("device") == device and r.get("available"):
            return r
    return None


def speed_ratios(runs: list[dict[str, Any]], lengths: tuple[float, ...], ddpm_steps: int) -> dict[str, Any]:
    """Ratios between configurations measured in the same run."""
    out: dict[str, Any] = {}
    for s in lengths:
        d, r = _find(runs, "diffusion", s), _find(runs, "rule", s)
        if d and r:
            out[f"diffusion_time_over_rule_{s:g}s"] = round(d["median_s"] / r["median_s"], 2)
    d10 = _find(runs, "diffusion", lengths[0])
    p10 = _find(runs, f"diffusion ddpm {ddpm_steps} steps", lengths[0])
    if d10 and p10:
        out[f"ddpm{ddpm_steps}_time_over_default_{lengths[0]:g}s"] = round(p10["median_s"] / d10["median_s"], 1)
    g = _find(runs, "diffusion", lengths[0], "cuda")
    if d10 and g:
        out[f"cpu_time_over_cuda_{lengths[0]:g}s"] = round(d10["median_s"] / g["median_s"], 1)
    return out
