"""Rotation conversions in numpy: quaternions (w, x, y, z, Blender's order), 3x3 matrices,
6D (the first two matrix columns, Zhou et al. 2019), axis-angle and Euler angles.

Every function is vectorised over leading axes.
"""

from __future__ import annotations

import numpy as np

EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    q = np.zeros(shape + (4,), dtype=np.float64)
    q[..., 0] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.maximum(n, 1e-12)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Shepperd's method; returns w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    d = {(r, c): m[..., r, c] for r in range(3) for c in range(3)}
    cands = np.stack(
        [
            np.stack([1 + trace, d[2, 1] - d[1, 2], d[0, 2] - d[2, 0], d[1, 0] - d[0, 1]], -1),
            np.stack([d[2, 1] - d[1, 2], 1 + m00 - m11 - m22, d[0, 1] + d[1, 0], d[0, 2] + d[2, 0]], -1),
            np.stack([d[0, 2] - d[2, 0], d[0, 1] + d[1, 0], 1 - m00 + m11 - m22, d[1, 2] + d[2, 1]], -1),
            np.stack([d[1, 0] - d[0, 1], d[0, 2] + d[2, 0], d[1, 2] + d[2, 1], 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )
    diag = np.stack([trace, m00, m11, m22], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = quat_normalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle -> 0.5 as angle -> 0
    scale = np.where(angle > 1e-8, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    scale = np.where(s > 1e-8, angle / np.maximum(s, 1e-12), 2.0)
    return q[..., 1:] * scale


def quat_from_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    angle = np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(0.5 * angle), axis * np.sin(0.5 * angle)], axis=-1)


def quat_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction a onto direction b."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    cross = np.cross(a, b)
    q = np.concatenate([1.0 + dot, cross], axis=-1)
    # Opposite vectors: rotate 180 degrees about any axis perpendicular to a.
    opposite = (dot[..., 0] < -1 + 1e-9)
    if np.any(opposite):
        ortho = np.cross(a, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(ortho, axis=-1) < 1e-6
        ortho = np.where(small[..., None], np.cross(a, np.array([0.0, 1.0, 0.0])), ortho)
        q = np.where(opposite[..., None], np.concatenate([np.zeros_like(dot), ortho], -1), q)
    return quat_normalize(q)


def quat_slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)[..., None] if np.ndim(t) else float(t)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    lin = dot > 0.9995
    wa = np.where(lin, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(lin, 1.0, sin_t))
    wb = np.where(lin, t, np.sin(t * theta) / np.where(lin, 1.0, sin_t))
    return quat_normalize(wa * a + wb * b)


def quat_make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along the time axis so consecutive quaternions stay on one hemisphere
    (otherwise F-curve interpolation between keys takes the long way round)."""
    q = np.moveaxis(np.asarray(q, dtype=np.float64), axis, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis)
    # Each frame's sign relative to the previous one, accumulated: one flip carries to all later frames.
    step = np.where(np.sum(q[1:] * q[:-1], axis=-1) < 0, -1.0, 1.0)
    sign = np.concatenate([np.ones_like(step[:1]), np.cumprod(step, axis=0)], axis=0)
    return np.moveaxis(q * sign[..., None], 0, axis)


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def quat_to_6d(q: np.ndarray) -> np.ndarray:
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6: np.ndarray) -> np.ndarray:
    return matrix_to_quat(sixd_to_matrix(d6))


def _axis_matrix(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    if axis == "X":
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == "Y":
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return np.stack(rows, -1).reshape(angle.shape + (3, 3))


def euler_to_matrix(euler: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Blender's convention: order 'XYZ' applies X first, then Y, then Z (R = Rz @ Ry @ Rx);
    euler[..., i] is always the angle about X, Y, Z for i = 0, 1, 2."""
    euler = np.asarray(euler, dtype=np.float64)
    idx = {"X": 0, "Y": 1, "Z": 2}
    m = None
    for axis in order:
        r = _axis_matrix(axis, euler[..., idx[axis]])
        m = r if m is None else r @ m
    assert m is not None
    return m


def matrix_to_euler(m: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Inverse of euler_to_matrix for Blender's Euler orders; returns angles about X, Y, Z."""
    if order not in EULER_ORDERS:
        raise ValueError(f"unknown Euler order {order!r}")
    m = np.asarray(m, dtype=np.float64)
    idx = {"X": 0, "Y": 1, "Z": 2}
    i, j, k = (idx[a] for a in order)
    # R = R_k @ R_j @ R_i. Parity: +1 for cyclic orders (XYZ, YZX, ZXY).
    parity = 1.0 if (j - i) % 3 == 1 else -1.0
    sin_j = np.clip(-parity * m[..., k, i], -1.0, 1.0)
    a_j = np.arcsin(sin_j)
    cos_j = np.sqrt(np.maximum(1.0 - sin_j**2, 0.0))
    a_i = np.arctan2(parity * m[..., k, j], m[..., k, k])
    a_k = np.arctan2(parity * m[..., j, i], m[..., i, i])
    # Gimbal lock: put everything into the first angle. With a_k = 0, m = R_j(a_j) @ R_i(a_i), so
    # R_i(a_i) = R_j(a_j)^T @ m and a_i is read off that single-axis rotation.
    lock = cos_j < 1e-6
    if np.any(lock):
        a_k = np.where(lock, 0.0, a_k)
        r_i = np.swapaxes(_axis_matrix(order[1], a_j), -1, -2) @ m
        i1, i2 = (i + 1) % 3, (i + 2) % 3
        a_i = np.where(lock, np.arctan2(r_i[..., i2, i1], r_i[..., i1, i1]), a_i)
    out = np.zeros(m.shape[:-2] + (3,))
    out[..., i] = a_i
    out[..., j] = a_j
    out[..., k] = a_k
    return out


def euler_make_continuous(euler: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Keep Euler keys continuous along time (axis 0), like Blender's Euler.make_compatible: each frame
    takes whichever of its two equivalent angle triples, shifted by whole turns, lies nearest the
    previous frame, so F-curves neither jump by 2*pi nor flip branch when the middle angle passes 90 deg."""
    euler = np.asarray(euler, dtype=np.float64)
    if order not in EULER_ORDERS:
        raise ValueError(f"unknown Euler order {order!r}")
    idx = {"X": 0, "Y": 1, "Z": 2}
    i, j, k = (idx[a] for a in order)
    flat = euler.reshape(euler.shape[0], -1, 3)
    out = np.empty_like(flat)
    out[0] = flat[0]
    two_pi = 2.0 * np.pi
    for t in range(1, flat.shape[0]):
        prev = out[t - 1]
        first = flat[t]
        second = first.copy()
        second[:, i] += np.pi
        second[:, j] = np.pi - second[:, j]
        second[:, k] += np.pi
        first = first + two_pi * np.round((prev - first) / two_pi)
        second = second + two_pi * np.round((prev - second) / two_pi)
        take_second = np.abs(second - prev).sum(-1) < np.abs(first - prev).sum(-1)
        out[t] = np.where(take_second[:, None], second, first)
    return out.reshape(euler.shape)
