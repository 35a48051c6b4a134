"""Speed of corpus speech: seconds of 16 kHz audio (with word timings) per second of one core.

    .venv/bin/python -c "from gestura.training.corpus.bench_speech import main; main()"

(with the repository importable as ``gestura``, as tests/conftest.py arranges), or from the repository root:

    .venv/bin/python training/corpus/bench_speech.py
"""

from __future__ import annotations

import time

import numpy as np


def run(n: int = 60, seed: int = 0, deterministic: bool = True) -> dict[str, float]:
    from .sentences import make_passage
    from .speech import Synthesizer, random_voice

    rng = np.random.default_rng(seed)
    synth = Synthesizer(deterministic=deterministic)
    jobs = []
    for _ in range(n):
        voice = random_voice(rng)
        jobs.append((make_passage(rng, float(rng.uniform(4.0, 20.0)), voice.rate_wpm), voice))
    audio_s = 0.0
    words = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for text, voice in jobs:
        utt = synth.speak(text, voice)
        audio_s += utt.duration
        words += len(utt.words)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0  # this process only; the forked children's time shows in wall
    return {"utterances": n, "audio_s": audio_s, "words": words, "wall_s": wall, "cpu_s": cpu,
            "realtime_factor": audio_s / wall}


def main() -> None:
    for deterministic in (True, False):
        r = run(deterministic=deterministic)
        mode = "forked, byte-identical" if deterministic else "in-process, not reproducible"
        print(f"{mode}: {r['utterances']} utterances, {r['audio_s']:.1f} s of speech, {r['words']} words "
              f"in {r['wall_s']:.2f} s wall on one core: {r['realtime_factor']:.0f}x real time")


if __name__ == "__main__":
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if "gestura" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gestura", root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["gestura"] = module
        spec.loader.exec_module(module)
    from gestura.training.corpus.bench_speech import main as _main

    _main()
