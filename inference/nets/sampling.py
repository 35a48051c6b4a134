"""Diffusion schedule and samplers for an x0-predicting model (in the manner of k-diffusion's samplers).

The schedule is the discrete cosine schedule (Nichol & Dhariwal) with ``steps`` training steps. A sampler
gets ``denoise(x, t) -> x0`` (guidance and known frames are the caller's business) and returns x0:

- ``sample_ddpm``: ancestral DDPM over every training step (the slow baseline: 1000 model calls);
- ``sample_ddim``: deterministic DDIM (eta 0) on a subset of steps;
- ``sample_dpmpp_2m``: DPM-Solver++(2M) (Lu et al. 2022), second-order multistep in log-SNR, the default:
  good motion in about 8-12 model calls.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor

Denoise = Callable[[Tensor, Tensor], Tensor]  # (x_t, integer steps (B,)) -> x0
Callback = Callable[[int, int], bool | None]  # (done, total) -> False to stop


class Cancelled(Exception):
    pass


def cosine_alphas_cumprod(steps: int, s: float = 0.008) -> Tensor:
    t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0)  # (steps,) for t = 0..steps-1


class Schedule:
    def __init__(self, steps: int = 1000) -> None:
        self.steps = steps
        self.abar = cosine_alphas_cumprod(steps)

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        abar = self.abar.to(t.device)[t.long()]
        return abar.sqrt(), (1 - abar).sqrt()

    def add_noise(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        a, s = self.alpha_sigma(t)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return a.to(x0.dtype).reshape(shape) * x0 + s.to(x0.dtype).reshape(shape) * noise

    def timesteps(self, n: int, lambda_min: float = -5.0) -> list[int]:
        """n+1 decreasing integer steps ending at 0, evenly spaced in log-SNR lambda = log(alpha / sigma) from
        ``lambda_min`` (alpha ~ 0.007: the signal left there is negligible, and starting at the cosine schedule's
        last step, alpha ~ 5e-5, makes the first step of a few-step solver far too long) to step 0."""
        n = max(1, min(n, self.steps - 1))
        lam = (0.5 * (torch.log(self.abar) - torch.log1p(-self.abar))).tolist()  # decreasing in t
        start = max(k for k, v in enumerate(lam) if v >= lambda_min) if lam[-1] < lambda_min else self.steps - 1
        start = max(start, n)
        targets = torch.linspace(lam[start], lam[0], n + 1).tolist()
        steps, k = [], start
        for v in targets:  # walk down in t: the first step whose lambda reaches each target
            while k > 0 and lam[k] < v:
                k -= 1
            steps.append(k)
        for i in range(1, len(steps)):  # strictly decreasing, room left for the rest
            steps[i] = min(steps[i], steps[i - 1] - 1)
            steps[i] = max(steps[i], n - i)
        steps[-1] = 0
        return steps


def _step_tensor(t: int, like: Tensor) -> Tensor:
    return torch.full((like.shape[0],), t, dtype=torch.long, device=like.device)


def _tick(callback: Callback | None, done: int, total: int) -> None:
    if callback is not None and callback(done, total) is False:
        raise Cancelled


@torch.no_grad()
def sample_ddpm(denoise: Denoise, schedule: Schedule, noise: Tensor, generator: torch.Generator | None = None,
                callback: Callback | None = None) -> Tensor:
    abar = schedule.abar
    x = noise
    total = schedule.steps
    x0 = x
    for k, t in enumerate(range(schedule.steps - 1, -1, -1)):
        x0 = denoise(x, _step_tensor(t, x))
        if t == 0:
            break
        a_t, a_prev = float(abar[t]), float(abar[t - 1])
        beta = 1 - a_t / a_prev
        # Posterior q(x_{t-1} | x_t, x0) mean and variance.
        c0 = math.sqrt(a_prev) * beta / (1 - a_t)
        ct = math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t)
        var = beta * (1 - a_prev) / (1 - a_t)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = c0 * x0 + ct * x + math.sqrt(var) * z
        _tick(callback, k + 1, total)
    return x0


@torch.no_grad()
def sample_ddim(denoise: Denoise, schedule: Schedule, noise: Tensor, n_steps: int,
                callback: Callback | None = None) -> Tensor:
    ts = schedule.timesteps(n_steps)
    x = noise
    for k, (t, t_next) in enumerate(itertools.pairwise(ts)):
        x0 = denoise(x, _step_tensor(t, x))
        a_t, s_t = (float(v) for v in schedule.alpha_sigma(torch.tensor(t)))
        a_n, s_n = (float(v) for v in schedule.alpha_sigma(torch.tensor(t_next)))
        eps = (x - a_t * x0) / s_t
        x = a_n * x0 + s_n * eps
        _tick(callback, k + 1, len(ts) - 1)
    return x  # at step 0 the noise level is ~0.006: x is the sample


@torch.no_grad()
def sample_dpmpp_2m(denoise: Denoise, schedule: Schedule, noise: Tensor, n_steps: int,
                    callback: Callback | None = None) -> Tensor:
    ts = schedule.timesteps(n_steps)
    x = noise
    x0_prev: Tensor | None = None
    h_prev = 0.0
    for k, (t, t_next) in enumerate(itertools.pairwise(ts)):
        x0 = denoise(x, _step_tensor(t, x))
        a_t, s_t = (float(v) for v in schedule.alpha_sigma(torch.tensor(t)))
        a_n, s_n = (float(v) for v in schedule.alpha_sigma(torch.tensor(t_next)))
        lam_t, lam_n = math.log(a_t / s_t), math.log(a_n / s_n)
        h = lam_n - lam_t
        d = x0
        if x0_prev is not None and h_prev > 0:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (s_n / s_t) * x - a_n * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
        _tick(callback, k + 1, len(ts) - 1)
    return x
