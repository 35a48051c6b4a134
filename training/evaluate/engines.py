"""The engines and baselines an evaluation compares, and how each one generates a clip.

A variant is ground truth (the corpus motion) or a call of inference.pipeline.generate_motion with an
engine and EngineOptions. A variant whose engine cannot generate (not installed, no model, an error on the
first clip) is reported as unavailable with the reason, and the evaluation goes on without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import FPS, EvalClip, clip_prompt


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    engine: str | None  # None: ground truth
    options: dict[str, Any] = field(default_factory=dict)  # EngineOptions fields
    subset: str = "all"  # "all": every evaluated clip; "slow": the documented subset for slow samplers
    prompt: str = "clip"  # "clip": the clip's description (per-part for mixed clips); "none": empty prompt
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "engine": self.engine or "ground truth",
                "options": dict(self.options), "subset": self.subset, "prompt": self.prompt, "note": self.note}


def builtin_variants(model_dir: str = "", ddpm_steps: int = 1000) -> dict[str, Variant]:
    """The baselines of every report, by name."""
    extra = {"model_dir": model_dir} if model_dir else {}
    return {v.name: v for v in (
        Variant("gt", "ground truth", None, note="the corpus test split's motion (rule engine v2, the clip's "
                "catalogue style and seed)"),
        Variant("rule", "rule-based", "rule", note="engine='rule' with the clip's prompt parsed by "
                "inference/style.py; the corpus itself was made by this engine, so it is a reference, not a "
                "competitor"),
        Variant("rule_nostyle", "rule-based, no prompt", "rule", prompt="none",
                note="engine='rule' with an empty prompt (neutral style): the floor of style accuracy"),
        Variant("diffusion", "diffusion (default)", "diffusion", dict(extra),
                note="engine='diffusion', EngineOptions() defaults"),
        Variant("diffusion_ddpm", f"diffusion, DDPM {ddpm_steps} steps", "diffusion",
                {"sampler": "ddpm", "steps": ddpm_steps, **extra}, subset="slow",
                note=f"EngineOptions(sampler='ddpm', steps={ddpm_steps}): the sampler the model was trained for, "
                "without few-step shortcuts; slow, so on the documented subset only"),
        Variant("diffusion_nostyle", "diffusion, style ignored", "diffusion", {"strength": 0.0, **extra},
                note="EngineOptions(strength=0.0): the prompt is ignored (no-style ablation)"),
        Variant("diffusion_codes", "diffusion, per-part codes in one pass", "diffusion",
                {"part_mixing": "codes", **extra},
                note="EngineOptions(part_mixing='codes'): a per-part prompt as one conditional pass with each "
                "part's own code, instead of a pass per style (ablation of the compositional guidance; the same "
                "as the default for one-style prompts)"),
    )}


DEFAULT_VARIANTS = ("gt", "rule", "diffusion", "diffusion_ddpm", "diffusion_nostyle")


def checkpoint_variant(model_dir: str, k: int) -> Variant:
    return Variant(f"diffusion_ckpt{k}", f"diffusion ({model_dir})", "diffusion", {"model_dir": model_dir},
                   note=f"engine='diffusion', EngineOptions(model_dir={model_dir!r})")


def engine_seed(clip: EvalClip, eval_seed: int) -> int:
    """The seed an engine gets for a clip: never the clip's own corpus seed (the rule engine would then
    replay the ground truth exactly)."""
    return int((eval_seed * 1_000_003 + clip.index * 7919 + 17) % (2**31 - 1))


def plain_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The scalar (and short list) entries of an engine's motion.meta: what it says it did (sampler, steps,
    guidance, model, device)."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        elif isinstance(v, list | tuple) and len(v) <= 16 and all(isinstance(x, int | float) for x in v):
            out[k] = list(v)
    return out


def generate(variant: Variant, clip: EvalClip, eval_seed: int,
             prompt: str | None = None) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """(rotations (T, 52, 4), root (T, 3), seconds, the engine's own account of what it did) of a variant
    on a clip, at 30 fps."""
    if variant.engine is None:
        return clip.rotations.astype(np.float64), clip.root.astype(np.float64), 0.0, {}
    from ...inference.motion import resample_motion
    from ...inference.pipeline import EngineOptions, generate_motion

    if prompt is None:
        prompt = clip_prompt(clip) if variant.prompt == "clip" else ""
    options = EngineOptions(**variant.options)
    audio, words = clip.audio_obj(), clip.word_objs()
    t = time.perf_counter()
    motion, _ = generate_motion(audio, words, prompt, engine=variant.engine, seed=engine_seed(clip, eval_seed),
                                options=options)
    seconds = time.perf_counter() - t
    meta = plain_meta(motion.meta)
    if abs(motion.fps - FPS) > 1e-6:
        meta["resampled_from_fps"] = motion.fps
        motion = resample_motion(motion, FPS)
    return motion.rotations, motion.root, seconds, meta


def probe(variant: Variant, clip: EvalClip, eval_seed: int) -> str | None:
    """None when the variant generates a sane motion for ``clip``, else why not."""
    try:
        rot, root, _, _ = generate(variant, clip, eval_seed)
    except Exception as e:  # noqa: BLE001 - any failure makes the variant unavailable, with its reason
        return f"{type(e).__name__}: {e}"
    if rot.ndim != 3 or rot.shape[1:] != (52, 4) or root.shape != (rot.shape[0], 3):
        return f"unexpected motion shapes {rot.shape} / {root.shape}"
    if not (np.isfinite(rot).all() and np.isfinite(root).all()):
        return "the motion holds NaN or infinite values"
    return None
