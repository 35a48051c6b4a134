"""Speech in, canonical motion out: the engine-independent generation path (no bpy).

The Blender operator, the headless script and the benchmarks all call generate(); only plain values
and numpy arrays go in and out, so it can run in a worker process as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CancelledError, InputError
from .motion import CanonicalMotion

if TYPE_CHECKING:
    from .audio import Audio, AudioFeatures
    from .transcript import Word

ENGINES = ("diffusion", "rule")  # the first is the default
DEFAULT_ENGINE = ENGINES[0]
Progress = Callable[[float, str], bool | None]  # (fraction, message) -> False to cancel


@dataclass
class EngineOptions:
    """Settings of the diffusion engine (the rule engine ignores them). Plain values only: they cross to
    the inference worker process."""

    # Style strength per body part (classifier-free guidance weight; 0 = ignore the prompt for that part).
    # Keys: head, torso, left_arm, right_arm, left_hand, right_hand, lower_body; missing keys use `strength`.
    part_strength: dict[str, float] = field(default_factory=dict)
    strength: float = 2.0
    steps: int = 0  # sampler steps; 0 = the model's default
    sampler: str = "dpm"  # "dpm" (DPM-Solver++ 2M), "ddim" or "ddpm" (ancestral, for baselines)
    smoothing: float = -1.0  # Gaussian low-pass on the decoded motion (frames); -1 = the model's default
    # Sampling-time style guidance (steps along the motion style encoder's gradient); -1 = the model's default.
    style_guidance: float = -1.0
    model_dir: str = ""  # a model folder; "" = the shipped starter model
    device: str = "auto"  # auto | cpu | cuda | mps
    style_motion_path: str = ""  # an example motion (BVH) whose style to follow instead of the prompt
    # Parts with different styles ("calm teacher; arms: angry"): "compose" (a conditional pass per style, each part
    # guided by its own style's pass) or "codes" (one pass with each part's own code); "" = the model's default.
    part_mixing: str = ""


class MissingTorchError(InputError):
    """The diffusion engine was asked for, but the Python running it has no torch."""


def check_diffusion_ready() -> None:
    """The diffusion engine needs torch: checked before the engine loads anything, without importing torch (the
    model process adds which preference picks its Python)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("torch") is None:
        raise MissingTorchError(
            f"The Diffusion engine needs PyTorch ('torch'), which the Python running it lacks: {sys.executable} "
            f"(Python {sys.version.split()[0]}). Install torch into that Python, or use the Rule-based engine."
        )


@dataclass
class GenerationRequest:
    audio_path: str
    audio_offset_s: float = 0.0  # where the used window starts in the file (a strip's trim)
    audio_duration_s: float | None = None  # window length; None = to the end
    transcript_path: str | None = None
    # Timed text from elsewhere (Blender text strips): (text, start, end) in seconds from the window start.
    transcript_segments: Sequence[tuple[str, float, float]] | None = None
    style_prompt: str = ""
    engine: str = DEFAULT_ENGINE
    seed: int = 0
    options: EngineOptions = field(default_factory=EngineOptions)


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
    from .transcript import load_transcript, words_from_segments

    if request.engine not in ENGINES:
        raise InputError(f"Unknown engine {request.engine!r}; available: {', '.join(ENGINES)}")
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()

    _report(progress, 0.0, "Reading audio")
    audio = load_audio(request.audio_path, offset_s=request.audio_offset_s, duration_s=request.audio_duration_s)
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

    _report(progress, 0.3, "Analysing speech")
    t = time.perf_counter()
    features = audio_features(audio)
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    motion, explanation = generate_motion(
        audio,
        words,
        request.style_prompt,
        engine=request.engine,
        seed=request.seed,
        options=request.options,
        features=features,
        progress=progress,
    )
    timings["engine"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    motion.meta.update({"engine": request.engine, "style_prompt": request.style_prompt, "seed": request.seed})
    _report(progress, 1.0, "Done")
    return GenerationResult(motion, list(words), explanation, warnings, timings)


def generate_motion(
    audio: Audio,
    words: Sequence[Word],
    style_prompt: str,
    *,
    engine: str = DEFAULT_ENGINE,
    seed: int = 0,
    options: EngineOptions | None = None,
    features: AudioFeatures | None = None,
    progress: Progress | None = None,
) -> tuple[CanonicalMotion, str]:
    """The engine step alone, on audio and timed words already in memory (evaluation and benchmarks call
    this on corpus clips); returns the motion and an explanation of how the style prompt was read."""
    from .audio import audio_features

    if engine not in ENGINES:
        raise InputError(f"Unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    options = options or EngineOptions()
    if features is None:
        features = audio_features(audio)
    _report(progress, 0.4, "Generating gestures")
    if engine == "rule":
        from .rule_engine import generate_rule_based
        from .style import parse_style_prompt

        style, explanation = parse_style_prompt(style_prompt)  # "calm teacher; arms: angry" styles parts
        return generate_rule_based(features, list(words), style, seed=seed), explanation
    check_diffusion_ready()
    from .diffusion_engine import generate_diffusion

    def sub_progress(fraction: float, message: str) -> bool | None:
        return None if progress is None else progress(0.4 + 0.55 * fraction, message)

    return generate_diffusion(
        audio, features, list(words), style_prompt, seed=seed, options=options, progress=sub_progress
    )
