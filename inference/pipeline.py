"""Speech in, canonical motion out: the engine-independent generation path (no bpy).

The Blender operator, the headless script and the benchmarks all call generate(); only plain values
and numpy arrays go in and out, so it can run in a worker process as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CancelledError, InputError
from .motion import CanonicalMotion

ENGINES = ("rule",)
Progress = Callable[[float, str], bool | None]  # (fraction, message) -> False to cancel


@dataclass
class GenerationRequest:
    audio_path: str
    audio_offset_s: float = 0.0  # where the used window starts in the file (a strip's trim)
    audio_duration_s: float | None = None  # window length; None = to the end
    transcript_path: str | None = None
    # Timed text from elsewhere (Blender text strips): (text, start, end) in seconds from the window start.
    transcript_segments: Sequence[tuple[str, float, float]] | None = None
    style_prompt: str = ""
    engine: str = "rule"
    seed: int = 0


@dataclass
class GenerationResult:
    motion: CanonicalMotion
    words: list = field(default_factory=list)
    style_explanation: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None and progress(fraction, message) is False:
        raise CancelledError("Generation cancelled")


def generate(request: GenerationRequest, progress: Progress | None = None) -> GenerationResult:
    from .audio import audio_features, check_not_silent, load_audio
    from .rule_engine import generate_rule_based
    from .style import parse_style_prompt
    from .transcript import load_transcript, words_from_segments

    if request.engine not in ENGINES:
        raise InputError(f"Unknown engine {request.engine!r}; available: {', '.join(ENGINES)}")
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()

    _report(progress, 0.0, "Reading audio")
    audio = load_audio(
        request.audio_path, offset_s=request.audio_offset_s, duration_s=request.audio_duration_s
    )
    check_not_silent(audio)
    timings["audio"] = time.perf_counter() - t0

    _report(progress, 0.2, "Reading transcript")
    t = time.perf_counter()
    words: list = []
    if request.transcript_path:
        if not Path(request.transcript_path).is_file():
            raise InputError(f"Transcript file not found: {request.transcript_path}")
        words = load_transcript(request.transcript_path, audio, offset_s=request.audio_offset_s)
    elif request.transcript_segments:
        words = words_from_segments(request.transcript_segments)
        if not words:
            raise InputError("The transcript text strips hold no words")
    else:
        warnings.append("No transcript: gestures follow the speech rhythm only (no lexical gestures)")
    timings["transcript"] = time.perf_counter() - t

    _report(progress, 0.5, "Analysing speech")
    t = time.perf_counter()
    features = audio_features(audio)
    timings["features"] = time.perf_counter() - t

    _report(progress, 0.7, "Generating gestures")
    t = time.perf_counter()
    style, explanation = parse_style_prompt(request.style_prompt)  # "calm teacher; arms: angry" styles parts
    motion = generate_rule_based(features, words, style, seed=request.seed)
    timings["engine"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    motion.meta.update({"engine": request.engine, "style_prompt": request.style_prompt, "seed": request.seed})
    _report(progress, 1.0, "Done")
    return GenerationResult(motion, list(words), explanation, warnings, timings)
