"""Benchmark: the inference worker process against generating in this process, with the rule engine.

    .venv/bin/python tools/bench_worker.py [--seconds 30] [--repeats 5]

Measures, in one run on the same speech (the example speech repeated to --seconds, with its SRT):
- in-process generate(): median wall time over --repeats warm runs;
- the worker: start-up (spawn to "ready"), the first job of a new worker (cold: imports, JIT), and the median
  warm job from submit() to its result on this side; the overhead is warm worker minus warm in-process;
- poll() latency on the main-thread side while jobs run (called every 5 ms; the add-on's timer polls every
  50 ms): percentiles and maximum;
- cancel: how long cancel() takes, until the process is gone, and the next job on a fresh worker.
Prints the figures and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import devload
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _percentiles(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1e6
    return {"n": len(values), "p50_us": round(float(np.percentile(arr, 50)), 1),
            "p90_us": round(float(np.percentile(arr, 90)), 1), "p99_us": round(float(np.percentile(arr, 99)), 1),
            "max_us": round(float(arr.max()), 1)}


def _job(client, request, poll_times: list[float] | None = None, interval: float = 0.005):
    """Submits and waits; with poll_times, polls every `interval` and records each poll's duration, else
    blocks in poll(timeout) so that the wall time is not rounded up to a polling interval."""
    from gestura.inference.worker_client import ErrorEvent, ResultEvent

    t0 = time.perf_counter()
    client.submit(request)
    while True:
        if poll_times is None:
            events = client.poll(timeout=0.05)
        else:
            t = time.perf_counter()
            events = client.poll()
            poll_times.append(time.perf_counter() - t)
        for event in events:
            if isinstance(event, ResultEvent):
                return time.perf_counter() - t0, event.result
            if isinstance(event, ErrorEvent):
                raise event.error
        if poll_times is not None:
            time.sleep(interval)


def _wait_gone(pid: int, timeout: float = 5.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists() and stat.read_text().split()[2] == "Z":
                break
        except (ProcessLookupError, OSError, IndexError):
            break
        time.sleep(0.001)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    devload.load_gestura()
    from bench_generate import long_speech

    from gestura.inference.pipeline import GenerationRequest, generate
    from gestura.inference.worker_client import ProgressEvent, WorkerClient

    folder = Path(tempfile.mkdtemp(prefix="gestura_bench_worker_"))
    wav, srt = long_speech(args.seconds, folder)
    request = GenerationRequest(audio_path=str(wav), transcript_path=str(srt), style_prompt="confident speaker",
                                engine="rule")

    # In this process: one warm-up, then the repeats.
    generate(request)
    in_process = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        reference = generate(request)
        in_process.append(time.perf_counter() - t)

    # The worker: start-up, first (cold) job, warm jobs with poll timing.
    client = WorkerClient()
    t = time.perf_counter()
    client.start()
    while not client.info:
        client.poll(timeout=0.01)
        if time.perf_counter() - t > 120:
            raise SystemExit("the worker did not start")
    startup = time.perf_counter() - t
    cold, _ = _job(client, request)
    warm, poll_times = [], []
    for i in range(args.repeats):
        wall, result = _job(client, request, poll_times if i % 2 else None)
        if i % 2 == 0:
            warm.append(wall)
    assert np.array_equal(result.motion.rotations, reference.motion.rotations)
    payload = result.motion.rotations.nbytes + result.motion.root.nbytes

    # Cancel mid-job, then the next job on a fresh worker.
    client.submit(request)
    while not any(isinstance(e, ProgressEvent) for e in client.poll(timeout=0.05)):
        pass
    pid = client.pid
    assert pid is not None
    t = time.perf_counter()
    client.cancel()
    cancel_call = time.perf_counter() - t
    gone = cancel_call + _wait_gone(pid)
    respawn_job, _ = _job(client, request)
    client.shutdown()

    figures = {
        "speech_s": args.seconds,
        "frames": reference.motion.num_frames,
        "result_arrays_bytes": payload,
        "in_process_warm_s": round(statistics.median(in_process), 4),
        "worker_startup_s": round(startup, 4),
        "worker_first_job_s": round(cold, 4),
        "worker_warm_job_s": round(statistics.median(warm), 4),
        "worker_overhead_s": round(statistics.median(warm) - statistics.median(in_process), 4),
        "poll": _percentiles(poll_times),
        "cancel_call_ms": round(cancel_call * 1000, 3),
        "cancel_until_process_gone_ms": round(gone * 1000, 2),
        "job_after_cancel_s": round(respawn_job, 4),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"Rule engine, {args.seconds:.0f} s of speech ({figures['frames']} frames, "
          f"{payload / 1e6:.2f} MB of motion arrays back), medians of {args.repeats} (warm):")
    print(f"  in this process          {figures['in_process_warm_s'] * 1000:8.1f} ms")
    print(f"  through the worker       {figures['worker_warm_job_s'] * 1000:8.1f} ms   "
          f"(overhead {figures['worker_overhead_s'] * 1000:+.1f} ms)")
    print(f"  worker start-up          {startup * 1000:8.1f} ms   first job on it {cold * 1000:.1f} ms")
    p = figures["poll"]
    print(f"  poll() while a job runs  p50 {p['p50_us']:.1f} us, p90 {p['p90_us']:.1f} us, p99 {p['p99_us']:.1f} us, "
          f"max {p['max_us']:.1f} us over {p['n']} calls")
    print(f"  cancel()                 {cancel_call * 1000:8.3f} ms   process gone after {gone * 1000:.1f} ms; "
          f"next job (new worker) {respawn_job * 1000:.1f} ms")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
