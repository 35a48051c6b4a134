"""Key reduction without Blender: the angular bound holds on the curves Blender evaluates, few keys are kept."""

from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.rotations import EULER_ORDERS, quat_from_axis_angle, quat_make_continuous
from gestura.retarget.channels import rotation_channels
from gestura.retarget.keyreduce import (
    BoneChannels,
    ReducedKeys,
    bezier_handles,
    evaluate_keys,
    reduce_keys,
    rotation_angle_error,
    rotation_reference,
)

ROOT_MODES = ("QUATERNION", "AXIS_ANGLE", *EULER_ORDERS)


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, width: int = 31) -> np.ndarray:
    walk = rng.normal(size=(n + 2 * width, dims)).cumsum(0)
    kernel = np.hanning(width)
    kernel /= kernel.sum()
    out = np.stack([np.convolve(walk[:, d], kernel, mode="same") for d in range(dims)], 1)[width:-width]
    return out - out.mean(0)


def _random_rotations(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    aa = _smooth_noise(rng, n, 3)
    aa *= amplitude / max(np.abs(aa).max(), 1e-9)
    angle = np.linalg.norm(aa, axis=-1)
    return quat_from_axis_angle(aa, angle)


def _blender_reference_eval(keys: ReducedKeys, offset: float, n: int) -> np.ndarray:
    """A scalar re-implementation of an F-curve's Bezier evaluation, independent of the module's: float32 control
    points, x(u) = frame solved by bisection, then y(u)."""
    fr = (keys.frames + offset).astype(np.float64)
    out = np.empty((n, keys.values.shape[1]))
    if keys.slopes is None:
        for t in range(n):
            out[t] = keys.values[max(0, np.searchsorted(keys.frames, t, side="right") - 1)]
        return out
    lx, ly, rx, ry = bezier_handles(fr, keys.values, keys.slopes)
    f32 = np.float32
    for t in range(n):
        k = min(max(0, int(np.searchsorted(keys.frames, t, side="right")) - 1), len(fr) - 2)
        xs = [float(f32(fr[k])), float(f32(rx[k])), float(f32(lx[k + 1])), float(f32(fr[k + 1]))]
        target = t + offset
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            s = 1.0 - mid
            x = xs[0] * s**3 + 3 * xs[1] * mid * s * s + 3 * xs[2] * mid * mid * s + xs[3] * mid**3
            lo, hi = (mid, hi) if x < target else (lo, mid)
        u = min(1.0, max(0.0, 0.5 * (lo + hi)))
        s = 1.0 - u
        for c in range(keys.values.shape[1]):
            ys = [float(f32(keys.values[k, c])), float(f32(ry[k, c])), float(f32(ly[k + 1, c])),
                  float(f32(keys.values[k + 1, c]))]
            out[t, c] = ys[0] * s**3 + 3 * ys[1] * u * s * s + 3 * ys[2] * u * u * s + ys[3] * u**3
    return out


def _angles_deg(mode: str, got: np.ndarray, dense: np.ndarray) -> np.ndarray:
    return np.degrees(rotation_angle_error(mode, got, rotation_reference(mode, dense)))


@pytest.mark.parametrize("tolerance", [0.25, 1.0, 3.0])
def test_bound_holds_for_random_smooth_motion_in_every_rotation_mode(tolerance):
    rng = np.random.default_rng(1)
    n, offset = 600, 1001.0
    bones = []
    for i, mode in enumerate(ROOT_MODES * 2):
        quats = _random_rotations(rng, n, amplitude=0.3 + 0.4 * (i % 3))
        _prop, channels = rotation_channels(quats, mode)
        location = _smooth_noise(rng, n, 3) * 0.01 if i == 0 else None
        bones.append(BoneChannels(mode, channels, location))
    keys, report = reduce_keys(bones, tolerance, 0.002, frame_offset=offset)
    assert len(keys) == len(bones)
    for bone, k in zip(bones, keys, strict=True):
        assert k.frames[0] == 0 and k.frames[-1] == n - 1 and np.all(np.diff(k.frames) > 0)
        got = evaluate_keys(k, offset, n)
        assert bone.rotation is not None and bone.rotation_mode is not None
        err = _angles_deg(bone.rotation_mode, got[:, : k.n_rotation], bone.rotation)
        assert err.max() <= tolerance, (bone.rotation_mode, err.max())
        assert abs(err.max() - k.max_angle_deg) < 1e-6
        if bone.location is not None:
            assert np.linalg.norm(got[:, k.n_rotation:] - bone.location, axis=-1).max() <= 0.002
    assert report.max_angle_deg <= tolerance
    assert report.keys < report.dense_keys
    assert report.dense_keys == sum(n * (b.n_rotation + (3 if b.location is not None else 0)) for b in bones)


def test_the_model_matches_an_independent_bezier_evaluation():
    """The module's vectorised interpolant against a scalar bisection re-implementation, at a large frame
    offset where float32 handle rounding matters most."""
    rng = np.random.default_rng(2)
    n, offset = 300, 48000.0
    bones = [BoneChannels(mode, rotation_channels(_random_rotations(rng, n, 1.0), mode)[1])
             for mode in ("QUATERNION", "ZXY", "AXIS_ANGLE")]
    keys, _ = reduce_keys(bones, 0.5, frame_offset=offset)
    for bone, k in zip(bones, keys, strict=True):
        reference = _blender_reference_eval(k, offset, n)
        assert np.abs(reference - evaluate_keys(k, offset, n)).max() < 1e-5
        assert bone.rotation_mode is not None and bone.rotation is not None
        assert _angles_deg(bone.rotation_mode, reference[:, : k.n_rotation], bone.rotation).max() <= 0.5


@pytest.fixture(scope="module")
def engine_motion():
    """The rule engine's motion on the example speech (the real thing the reduction has to compress)."""
    from pathlib import Path

    from gestura.inference.pipeline import GenerationRequest, generate

    root = Path(__file__).resolve().parents[2]
    speech = root / "examples" / "speech"
    request = GenerationRequest(audio_path=str(speech / "hello.wav"), transcript_path=str(speech / "hello.srt"),
                                style_prompt="excited keynote speaker", engine="rule")
    return generate(request).motion


@pytest.mark.parametrize("mode", ["QUATERNION", "YXZ", "AXIS_ANGLE"])
def test_engine_motion_keeps_at_most_a_fifth_of_the_keys_at_one_degree(engine_motion, mode):
    rotations = engine_motion.rotations  # (T, 52, 4) local joint rotations
    n = rotations.shape[0]
    bones = [BoneChannels(mode, rotation_channels(rotations[:, j], mode)[1],
                          engine_motion.root if j == 0 else None) for j in range(rotations.shape[1])]
    keys, report = reduce_keys(bones, 1.0, 0.001, frame_offset=1.0)
    assert report.ratio <= 0.2, report.describe()
    assert report.max_angle_deg <= 1.0
    for bone, k in zip(bones, keys, strict=True):
        got = evaluate_keys(k, 1.0, n)
        assert bone.rotation is not None
        assert _angles_deg(mode, got[:, : k.n_rotation], bone.rotation).max() <= 1.0
    root = evaluate_keys(keys[0], 1.0, n)[:, keys[0].n_rotation:]
    assert np.linalg.norm(root - engine_motion.root, axis=-1).max() <= 0.001


def test_constant_channels_keep_the_first_and_last_frame_only():
    quats = np.tile(quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), 0.4), (500, 1))
    keys, report = reduce_keys([BoneChannels("QUATERNION", quats, np.ones((500, 3)))], 1.0, 0.001)
    assert keys[0].frames.tolist() == [0, 499]
    assert report.max_angle_deg < 1e-4 and report.max_distance < 1e-6
    assert report.keys == 2 * 7 and report.dense_keys == 500 * 7


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frames_key_every_frame(n):
    quats = _random_rotations(np.random.default_rng(3), 40, 0.5)[:n]
    keys, report = reduce_keys([BoneChannels("XYZ", rotation_channels(quats, "XYZ")[1])], 1.0)
    assert keys[0].frames.tolist() == list(range(n))
    assert keys[0].slopes is None  # every frame keyed: Blender's automatic handles
    assert report.keys == report.dense_keys == 3 * n


def test_quaternion_sign_flips_do_not_cost_keys_or_break_the_bound():
    rng = np.random.default_rng(4)
    quats = _random_rotations(rng, 400, 1.2)
    flipped = quats * np.where(rng.random(400) < 0.3, -1.0, 1.0)[:, None]
    clean_keys, clean = reduce_keys([BoneChannels("QUATERNION", quats)], 1.0)
    keys, report = reduce_keys([BoneChannels("QUATERNION", flipped)], 1.0)
    assert report.keys == clean.keys
    k = keys[0]
    # The keys lie on one hemisphere, so the curves between them take the short way round.
    assert np.all(np.sum(k.values[1:] * k.values[:-1], axis=-1) > 0)
    assert _angles_deg("QUATERNION", evaluate_keys(k, 0.0, 400), flipped).max() <= 1.0
    assert np.allclose(np.abs(np.sum(quat_make_continuous(flipped) * quats, -1)), 1.0)
    assert clean_keys[0].frames.tolist() == k.frames.tolist()


def test_zero_tolerance_keys_every_frame():
    quats = _random_rotations(np.random.default_rng(5), 120, 0.8)
    keys, report = reduce_keys([BoneChannels("QUATERNION", quats)], 0.0)
    assert keys[0].frames.tolist() == list(range(120)) and keys[0].slopes is None
    assert report.ratio == 1.0
    # Root motion with a zero distance tolerance is keyed on every frame, even with an angle tolerance.
    keys, _ = reduce_keys([BoneChannels("QUATERNION", quats, np.zeros((120, 3)))], 1.0, 0.0)
    assert keys[0].frames.size == 120


def test_location_only_bones_and_mixed_groups_come_back_in_order():
    rng = np.random.default_rng(6)
    loc = _smooth_noise(rng, 200, 3) * 0.05
    bones = [
        BoneChannels(None, None, loc),
        BoneChannels("QUATERNION", _random_rotations(rng, 200, 0.5)),
        BoneChannels("XZY", rotation_channels(_random_rotations(rng, 150, 0.5), "XZY")[1]),
    ]
    keys, report = reduce_keys(bones, 1.0, 0.0005)
    assert [k.values.shape[1] for k in keys] == [3, 4, 3]
    assert keys[2].frames[-1] == 149
    assert np.linalg.norm(evaluate_keys(keys[0], 0.0, 200) - loc, axis=-1).max() <= 0.0005
    assert keys[0].max_angle_deg == 0.0 and report.max_distance <= 0.0005


def test_handles_sit_at_thirds_with_the_slope():
    frames = np.array([10.0, 13.0, 25.0])
    values = np.array([[0.0], [1.0], [0.5]])
    slopes = np.array([[0.1], [0.0], [-0.2]])
    lx, ly, rx, ry = bezier_handles(frames, values, slopes)
    assert np.allclose(rx, [11.0, 17.0, 29.0]) and np.allclose(lx, [9.0, 12.0, 21.0])
    assert np.allclose(ry[:, 0], [0.1, 1.0, -0.3]) and np.allclose(ly[:, 0], [-0.1, 1.0, 1.3])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        BoneChannels("QUATERNION", np.zeros((10, 3)))
    with pytest.raises(ValueError):
        BoneChannels("BOGUS", np.zeros((10, 4)))
    with pytest.raises(ValueError):
        BoneChannels(None, None, None)
    with pytest.raises(ValueError):
        BoneChannels("XYZ", np.zeros((10, 3)), np.zeros((9, 3)))
    with pytest.raises(ValueError, match="finite"):
        BoneChannels("XYZ", np.full((10, 3), np.nan))
