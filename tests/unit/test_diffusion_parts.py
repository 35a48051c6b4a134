"""The diffusion engine's parts without a trained model: samplers, the denoiser's structure, known frames,
model folders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gestura.inference.diffusion_engine import KnownMotion, read_model_description, restore_known
from gestura.inference.errors import InputError
from gestura.inference.nets.gesture_diffusion import DenoiserConfig, GestureDenoiser
from gestura.inference.nets.sampling import Schedule, sample_ddim, sample_ddpm, sample_dpmpp_2m
from gestura.inference.nets.style_encoder import StyleEncoder, StyleEncoderConfig
from gestura.inference.rotations import quat_conj, quat_from_axis_angle, quat_mul


def gaussian_denoiser(schedule: Schedule, mu: float, s0: float):
    """The exact x0 posterior mean for data ~ N(mu, s0^2): a sampler must turn noise into that distribution."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = schedule.alpha_sigma(t)
        a, s = a.float().reshape(-1, 1), s.float().reshape(-1, 1)
        var = a**2 * s0**2 + s**2
        return mu + (a * s0**2 / var) * (x - a * mu)

    return denoise


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm"])
def test_samplers_reach_the_data_distribution(sampler: str) -> None:
    schedule = Schedule(1000)
    mu, s0 = 1.5, 0.3
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(4000, 1, generator=g)
    den = gaussian_denoiser(schedule, mu, s0)
    if sampler == "ddpm":
        x = sample_ddpm(den, schedule, noise, generator=g)
    elif sampler == "ddim":
        x = sample_ddim(den, schedule, noise, 50)
    else:
        x = sample_dpmpp_2m(den, schedule, noise, 8)
    assert abs(float(x.mean()) - mu) < 0.03
    assert abs(float(x.std()) - s0) < 0.03


def test_dpm_solver_with_few_steps_matches_many_step_ddim() -> None:
    schedule = Schedule(1000)
    den = gaussian_denoiser(schedule, 0.0, 0.5)
    noise = torch.randn(512, 1, generator=torch.Generator().manual_seed(1))
    ref = sample_ddim(den, schedule, noise, 500)
    fast = sample_dpmpp_2m(den, schedule, noise, 8)
    assert float((fast - ref).abs().max()) < 0.1


def tiny_denoiser() -> GestureDenoiser:
    torch.manual_seed(0)
    model = GestureDenoiser(DenoiserConfig(group=8, heads=2, layers=2, ff=32, lookback=6, cross_band=2))
    with torch.no_grad():  # zero-initialised output and modulation layers would hide the structure under test
        for p in model.parameters():
            if p.dim() > 0 and float(p.abs().sum()) == 0.0:
                torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def run(model: GestureDenoiser, x: torch.Tensor, style: torch.Tensor, audio: torch.Tensor,
        drop_style: torch.Tensor | None = None) -> torch.Tensor:
    b, t = x.shape[:2]
    text = torch.zeros(b, t, 128)
    ah, th = model.encode_conditions(audio, text)
    zeros = torch.zeros(b, t, 7)
    return model(x, torch.full((b,), 500), ah, th, style, torch.zeros_like(x), zeros, drop_style=drop_style)


def test_motion_attention_is_causal_and_limited_to_the_lookback() -> None:
    model = tiny_denoiser()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 20, 7, 32, generator=g)
    audio = torch.zeros(1, 80, 68)  # audio is bidirectional by design: keep it fixed
    style = torch.nn.functional.normalize(torch.randn(1, 7, 64, generator=g), dim=-1)
    with torch.no_grad():
        base = run(model, x, style, audio)
        later = x.clone()
        later[:, 12:] += 1.0  # change the future
        changed = run(model, later, style, audio)
    assert torch.allclose(base[:, :12], changed[:, :12], atol=1e-5)
    assert not torch.allclose(base[:, 12:], changed[:, 12:])


def test_style_reaches_only_through_the_parts_conditioning_and_null_style_ignores_it() -> None:
    model = tiny_denoiser()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 10, 7, 32, generator=g)
    audio = torch.randn(1, 40, 68, generator=g)
    s1 = torch.nn.functional.normalize(torch.randn(1, 7, 64, generator=g), dim=-1)
    s2 = torch.nn.functional.normalize(torch.randn(1, 7, 64, generator=g), dim=-1)
    dropped = torch.ones(1, 7)
    with torch.no_grad():
        assert not torch.allclose(run(model, x, s1, audio), run(model, x, s2, audio))
        assert torch.allclose(run(model, x, s1, audio, dropped), run(model, x, s2, audio, dropped), atol=1e-6)


def test_v_parameterisation_keeps_a_nearly_clean_input_and_checks_its_name() -> None:
    """With prediction="v" the model's x0 is alpha x_t - sigma F: an untrained network (F = 0, the output layer
    starts at zero) returns alpha x_t, so at low noise the input comes back nearly unchanged instead of through
    every layer; at high noise the network's own output dominates."""
    from gestura.inference.nets.sampling import Schedule

    torch.manual_seed(0)
    model = GestureDenoiser(DenoiserConfig(group=8, heads=2, layers=2, ff=32, prediction="v")).eval()
    x = torch.randn(2, 10, 7, 32)
    ah, th = model.encode_conditions(torch.zeros(2, 40, 68), torch.zeros(2, 10, 128))
    style, zeros = torch.zeros(2, 7, 64), torch.zeros(2, 10, 7)
    alpha, _ = Schedule(1000).alpha_sigma(torch.tensor([0, 999]))
    with torch.no_grad():
        out = model(x, torch.tensor([0, 999]), ah, th, style, torch.zeros_like(x), zeros)
    assert torch.allclose(out[0], float(alpha[0]) * x[0], atol=1e-6) and float(alpha[0]) > 0.9999
    assert float(out[1].abs().max()) < 0.01 * float(x[1].abs().max())
    with torch.no_grad():  # a trained network's output enters with -sigma at the noise level of each sample
        model.out_bias.fill_(1.0)
        out = model(x, torch.tensor([0, 999]), ah, th, style, torch.zeros_like(x), zeros)
    assert float((out[1] + 1.0).abs().max()) < 0.01
    with pytest.raises(ValueError, match="prediction"):
        DenoiserConfig.from_dict({"prediction": "eps"})


def test_style_encoder_parts_are_independent() -> None:
    enc = StyleEncoder(StyleEncoderConfig(channels=16)).eval()
    z = torch.randn(2, 24, 7, 32)
    with torch.no_grad():
        a = enc(z)
        z2 = z.clone()
        z2[:, :, 2] += 3.0  # change the left arm only
        b = enc(z2)
    assert torch.allclose(torch.linalg.norm(a, dim=-1), torch.ones(2, 7), atol=1e-5)
    changed = (a - b).abs().amax(dim=(0, 2))
    assert changed[2] > 1e-3 and float(changed[[0, 1, 3, 4, 5, 6]].max()) < 1e-6


def test_restore_known_pins_the_pose_exactly_and_eases_around_it() -> None:
    rng = np.random.default_rng(0)
    n = 60
    axes = np.repeat(rng.normal(size=(1, 52, 3)), n, axis=0)  # a held pose
    quats = quat_from_axis_angle(axes, np.full((n, 52), 0.3))
    pinned = quat_from_axis_angle(np.tile([0.0, 0.0, 1.0], (n, 52, 1)), np.full((n, 52), 0.8))
    mask = np.zeros(n, bool)
    mask[30] = True
    root = np.zeros((n, 3))
    out_q, out_r = restore_known(quats, root, KnownMotion(pinned, root + 1.0, mask), blend_frames=6)
    err = 2 * np.degrees(np.arccos(np.clip(np.abs(np.sum(out_q[30] * pinned[30], -1)), 0, 1)))
    assert err.max() < 1e-6
    assert np.allclose(out_q[:23], quats[:23]) and np.allclose(out_q[38:], quats[38:])
    steps = 2 * np.degrees(np.arccos(np.clip(np.abs(np.sum(out_q[1:] * out_q[:-1], -1)), 0, 1)))
    jump = 2 * np.degrees(np.arccos(np.clip(np.abs(np.sum(quats[30] * pinned[30], -1)), 0, 1)))
    assert steps.max() < 0.5 * jump.max()  # spread over several frames, not one step
    assert np.allclose(out_r[30], 1.0)
    rel = quat_mul(quat_conj(out_q[30]), pinned[30])
    assert np.all(np.abs(rel[:, 0]) > math.cos(math.radians(0.01)))


def test_model_folder_errors_are_clear(tmp_path) -> None:
    with pytest.raises(InputError, match="No Gestura diffusion model"):
        read_model_description(tmp_path)
    (tmp_path / "gestura_model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="is not a gestura-diffusion-1 model"):
        read_model_description(tmp_path)
    (tmp_path / "gestura_model.json").write_text("{not json")
    with pytest.raises(InputError, match="Unreadable"):
        read_model_description(tmp_path)
