"""Error-bounded key reduction for pose-bone channels (numpy only, no bpy).

Given one bone's channels sampled on every frame (rotation channels in the bone's rotation mode, optionally
its location), pick the frames to key so that the F-curves Blender evaluates between the kept keys stay within a
maximum *angular* error of the dense rotation (the angle of the rotation between the two, not a per-channel
error) and within a maximum distance of the dense location. All channels of a bone are keyed on the same
frames, so the bone's rotation stays consistent when an animator moves a key.

The interpolant is Blender's own. Every kept key gets Bezier handles that this module computes (written as
ALIGNED handles, which Blender keeps where they are): the handles of the segment between keys a and b sit a
third of the way along it in time, with the dense motion's slope at a and at b. A cubic Bezier with its time
handles at thirds is a cubic Hermite segment, and it depends only on the two keys that bound it, so the
search is local. The error is measured on the curve Blender evaluates from float32 control points
(``bezier_segment_eval`` follows fcurve.cc: the time cubic is solved for the curve parameter, then the value
cubic is evaluated), with the quaternion normalised as Blender normalises it, the axis of axis-angle
normalised, and Euler angles turned into a matrix in the bone's Euler order.

Algorithm: start from the first and the last frame, then split every segment whose worst frame exceeds the
tolerance at that frame (Douglas-Peucker with the real interpolant), all segments of all bones at once;
then try to drop every other key where the merged segment still meets the tolerance (a few alternating
rounds). Everything is vectorised over bones and frames; the Python loop runs once per split level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.rotations import EULER_ORDERS, euler_to_matrix, quat_make_continuous

HANDLE_FRACTION = 1.0 / 3.0
# Keys are accepted up to this fraction of the tolerance: headroom for Blender's float32 arithmetic.
SAFETY = 0.995
_MAX_MERGE_ROUNDS = 10
# The search starts from keys every INIT_STRIDE frames: splits then refine, merges coarsen.
INIT_STRIDE = 8
_MAX_SPLIT_LEVELS = 48
ROTATION_MODES = ("QUATERNION", "AXIS_ANGLE", *EULER_ORDERS)


@dataclass
class BoneChannels:
    """One bone's dense channels, one row per frame."""

    rotation_mode: str | None  # "QUATERNION", "AXIS_ANGLE", an Euler order, or None for no rotation
    rotation: np.ndarray | None  # (T, 4) quaternion or axis-angle (angle first), (T, 3) Euler
    location: np.ndarray | None = None  # (T, 3)

    def __post_init__(self) -> None:
        if (self.rotation is None) != (self.rotation_mode is None):
            raise ValueError("rotation and rotation_mode go together")
        if self.rotation_mode is not None and self.rotation_mode not in ROTATION_MODES:
            raise ValueError(f"unsupported rotation mode {self.rotation_mode!r}")
        if self.rotation is not None:
            self.rotation = np.asarray(self.rotation, dtype=np.float64)
            want = 3 if self.rotation_mode in EULER_ORDERS else 4
            if self.rotation.ndim != 2 or self.rotation.shape[1] != want:
                raise ValueError(f"{self.rotation_mode} rotation must be (T, {want}), got {self.rotation.shape}")
            if self.rotation_mode == "QUATERNION":
                # Keys on one hemisphere, so the curves between them take the short way round.
                self.rotation = quat_make_continuous(self.rotation)
        if self.location is not None:
            self.location = np.asarray(self.location, dtype=np.float64)
            if self.location.ndim != 2 or self.location.shape[1] != 3:
                raise ValueError(f"location must be (T, 3), got {self.location.shape}")
        if self.rotation is None and self.location is None:
            raise ValueError("a bone needs rotation or location channels")
        if not all(np.isfinite(p).all() for p in (self.rotation, self.location) if p is not None):
            raise ValueError("channels must be finite (no NaN or infinity)")
        if self.rotation is not None and self.location is not None and len(self.rotation) != len(self.location):
            raise ValueError("rotation and location must have the same number of frames")

    @property
    def num_frames(self) -> int:
        return len(self.rotation if self.rotation is not None else self.location)  # type: ignore[arg-type]

    @property
    def n_rotation(self) -> int:
        return 0 if self.rotation is None else self.rotation.shape[1]

    def stacked(self) -> np.ndarray:
        """(T, C): rotation channels, then location channels."""
        parts = [p for p in (self.rotation, self.location) if p is not None]
        return np.concatenate(parts, axis=1)


@dataclass
class ReducedKeys:
    """The keys of one bone: rotation channels first, then location channels (as in BoneChannels.stacked)."""

    frames: np.ndarray  # (K,) indices into the dense frames, ascending; the first and last frame always
    values: np.ndarray  # (K, C) key values (float32-exact)
    slopes: np.ndarray | None  # (K, C) value per frame at each key; None: every frame is keyed (auto handles)
    n_rotation: int
    max_angle_deg: float  # worst angular error of the evaluated curves against the dense motion
    max_distance: float

    @property
    def num_keys(self) -> int:
        """Keyframe points written: keys times channels."""
        return int(self.frames.size * self.values.shape[1])


@dataclass
class ReductionReport:
    keys: int  # keyframe points kept (all channels)
    dense_keys: int  # keyframe points on every frame
    max_angle_deg: float
    max_distance: float

    @property
    def ratio(self) -> float:
        return self.keys / self.dense_keys if self.dense_keys else 1.0

    def describe(self) -> str:
        text = (f"{self.keys:,} of {self.dense_keys:,} keys ({self.ratio:.1%}), "
                f"max error {self.max_angle_deg:.2f}\N{DEGREE SIGN}")
        if self.max_distance > 0:
            text += f", {self.max_distance:.2g} (location)"
        return text

    def as_dict(self) -> dict:
        return {"keys": self.keys, "dense_keys": self.dense_keys, "ratio": round(self.ratio, 4),
                "max_angle_deg": round(self.max_angle_deg, 4), "max_distance": round(self.max_distance, 6)}


# ---------------------------------------------------------------------------------------------------------------
# Handles and the interpolant


def dense_slopes(values: np.ndarray) -> np.ndarray:
    """Slope (value per frame) of dense samples along axis -2 (time): central differences, one-sided at the
    ends. values: (..., T, C)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(v)
    n = v.shape[-2]
    if n < 2:
        return out
    out[..., 1:-1, :] = 0.5 * (v[..., 2:, :] - v[..., :-2, :])
    out[..., 0, :] = v[..., 1, :] - v[..., 0, :]
    out[..., -1, :] = v[..., -1, :] - v[..., -2, :]
    return out


def handle_offsets(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time length of the left and right handle of each key (a third of the neighbouring segment; the end keys
    mirror their one segment, a lone key gets a third of a frame)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.size < 2:
        return np.full(frames.shape, HANDLE_FRACTION), np.full(frames.shape, HANDLE_FRACTION)
    gaps = np.diff(frames) * HANDLE_FRACTION
    left = np.concatenate([gaps[:1], gaps])
    right = np.concatenate([gaps, gaps[-1:]])
    return left, right


def bezier_handles(
    frames: np.ndarray, values: np.ndarray, slopes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left_x (K,), left_y (K, C), right_x (K,), right_y (K, C)) for keys at absolute frames with these slopes,
    in float64: Blender stores them as float32, and the error model rounds them the same way."""
    frames = np.asarray(frames, dtype=np.float64)
    hl, hr = handle_offsets(frames)
    return frames - hl, values - slopes * hl[:, None], frames + hr, values + slopes * hr[:, None]


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _cubic(p0, p1, p2, p3):
    """Power-basis coefficients of a cubic Bezier (as fcurve.cc's findzero and berekeny)."""
    return p0, 3.0 * (p1 - p0), 3.0 * (p0 - 2.0 * p1 + p2), p3 - p0 + 3.0 * (p1 - p2)


def bezier_segment_eval(x0, x1, x2, x3, y0, y1, y2, y3, x):
    """Value at time x of the Bezier segment with control points (x0, y0) ... (x3, y3), as Blender evaluates
    an F-curve: find the curve parameter u in [0, 1] with x(u) = x, then y(u). Broadcasts; the y arguments
    may carry a trailing channel axis that the x arguments lack."""
    c0, c1, c2, c3 = _cubic(x0, x1, x2, x3)
    c0 = c0 - x
    span = np.where(x3 > x0, x3 - x0, 1.0)
    u = np.clip((x - x0) / span, 0.0, 1.0)
    # With time handles at thirds x(u) is linear but for float32 rounding of the handles (relative 1e-7): one
    # Newton step from the linear guess leaves an error of order 1e-14.
    f = c0 + u * (c1 + u * (c2 + u * c3))
    df = c1 + u * (2.0 * c2 + 3.0 * u * c3)
    u = np.clip(u - f / np.where(np.abs(df) > 1e-12, df, 1.0), 0.0, 1.0)
    if np.ndim(y0) > np.ndim(u):
        u = u[..., None]
    d0, d1, d2, d3 = _cubic(y0, y1, y2, y3)
    return d0 + u * (d1 + u * (d2 + u * d3))


def evaluate_keys(keys: ReducedKeys, frame_offset: float, num_frames: int) -> np.ndarray:
    """The curves of reduced keys evaluated on every dense frame (T, C), following Blender's interpolation
    (constant extrapolation; every-frame keys give their own values)."""
    t = np.arange(num_frames, dtype=np.float64)
    if keys.slopes is None or keys.frames.size == 1:
        idx = np.clip(np.searchsorted(keys.frames, t, side="right") - 1, 0, keys.frames.size - 1)
        return keys.values[idx]
    fr = _f32(keys.frames.astype(np.float64) + frame_offset)
    lx, ly, rx, ry = bezier_handles(fr, keys.values, keys.slopes)
    lx, ly, rx, ry = _f32(lx), _f32(ly), _f32(rx), _f32(ry)
    seg = np.clip(np.searchsorted(keys.frames, t, side="right") - 1, 0, keys.frames.size - 2)
    a, b = seg, seg + 1
    return bezier_segment_eval(
        fr[a], rx[a], lx[b], fr[b], keys.values[a], ry[a], ly[b], keys.values[b], t + frame_offset
    )


# ---------------------------------------------------------------------------------------------------------------
# Errors


def _quat_angle(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Angle (radians) of the rotation between quaternions q (not necessarily unit; Blender normalises them) and
    unit quaternions ref: 4 asin(|q - ref| / 2) on the nearer hemisphere, with |q - ref|^2 = 2 - 2 |q.ref|."""
    norm = np.sqrt(np.einsum("...i,...i->...", q, q))
    dot = np.abs(np.einsum("...i,...i->...", q, ref)) / np.maximum(norm, 1e-12)
    return 4.0 * np.arcsin(np.sqrt(np.clip(0.5 * (1.0 - dot), 0.0, 1.0)))


def _axis_angle_quat(aa: np.ndarray) -> np.ndarray:
    """Quaternion of Blender's axis-angle channels (angle, x, y, z); the axis is normalised, a zero axis is
    no rotation (as in axis_angle_to_mat3)."""
    axis = aa[..., 1:]
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * aa[..., :1]
    unit = np.where(n > 1e-12, axis / np.maximum(n, 1e-12), 0.0)
    q = np.concatenate([np.cos(half), np.sin(half) * unit], axis=-1)
    return np.where(n > 1e-12, q, np.array([1.0, 0.0, 0.0, 0.0]))


def rotation_reference(mode: str, channels: np.ndarray) -> np.ndarray:
    """What rotation_angle_error compares against: unit quaternions, or matrices for Euler modes."""
    if mode == "QUATERNION":
        return channels / np.maximum(np.linalg.norm(channels, axis=-1, keepdims=True), 1e-12)
    if mode == "AXIS_ANGLE":
        return _axis_angle_quat(channels)
    return euler_to_matrix(channels, mode)


def rotation_angle_error(mode: str, channels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (radians) between the rotation Blender makes of these channels and a rotation_reference()."""
    if mode == "QUATERNION":
        return _quat_angle(channels, reference)
    if mode == "AXIS_ANGLE":
        return _quat_angle(_axis_angle_quat(channels), reference)
    diff = np.linalg.norm((euler_to_matrix(channels, mode) - reference).reshape(channels.shape[:-1] + (9,)), axis=-1)
    # ||R1 - R2||_F = 2 sqrt(2) sin(angle / 2)
    return 2.0 * np.arcsin(np.clip(diff / (2.0 * np.sqrt(2.0)), 0.0, 1.0))


# ---------------------------------------------------------------------------------------------------------------
# The reduction


@dataclass
class _Group:
    """Bones with the same rotation mode, channel layout and frame count, reduced together."""

    members: list[int]
    mode: str | None
    n_rot: int
    has_loc: bool
    dense: np.ndarray  # (G, T, C)
    keyed: np.ndarray  # (G, T, C) float32-exact values
    slopes: np.ndarray  # (G, T, C)
    reference: np.ndarray | None  # rotation reference (G, T, 4) or (G, T, 3, 3)


def _errors_at(g: _Group, keep: np.ndarray, pos: np.ndarray, tols: tuple[float, float, float]) -> np.ndarray:
    """Normalised error max(angle / rot_tol, distance / loc_tol) at flat (bone, frame) positions pos (ascending)
    of the curves through the kept keys. The Bezier coefficients are built once per segment."""
    offset, rot_tol, loc_tol = tols
    n = keep.shape[1]
    rows, t = np.divmod(pos, n)
    # The keys around each frame: the last at or before it and the next after it (every row keys its first and
    # last frame, so both lie in the frame's own row; the last frame is its own segment).
    keys = np.flatnonzero(keep.ravel())
    i = np.searchsorted(keys, pos, side="right") - 1
    seg_key = keys[i]  # flat index of the segment's first key
    next_key = np.where(t == n - 1, seg_key, keys[np.minimum(i + 1, keys.size - 1)])
    new_seg = np.empty(pos.size, dtype=bool)
    new_seg[:1] = True
    np.not_equal(seg_key[1:], seg_key[:-1], out=new_seg[1:])
    sid = np.cumsum(new_seg) - 1
    first = np.flatnonzero(new_seg)
    # Per segment: control points as Blender stores them (float32), power-basis coefficients in time and value.
    sr = rows[first]
    a, b = seg_key[first] - sr * n, next_key[first] - sr * n
    h = (b - a) * HANDLE_FRACTION
    xa, xb = _f32(a + offset), _f32(b + offset)
    cx = _cubic(xa, _f32(xa + h), _f32(xb - h), xb)
    span = np.where(xb > xa, xb - xa, 1.0)
    ya, yb = g.keyed[sr, a], g.keyed[sr, b]
    cy = np.stack(_cubic(ya, _f32(ya + g.slopes[sr, a] * h[:, None]), _f32(yb - g.slopes[sr, b] * h[:, None]), yb))
    # Per frame: solve x(u) = frame (one Newton step from the linear guess), then evaluate the value cubic.
    x = t + offset
    c0, c1, c2, c3 = (c[sid] for c in cx)
    c0 = c0 - x
    u = np.clip((x - xa[sid]) / span[sid], 0.0, 1.0)
    df = c1 + u * (2.0 * c2 + 3.0 * u * c3)
    u = np.clip(u - (c0 + u * (c1 + u * (c2 + u * c3))) / np.where(np.abs(df) > 1e-12, df, 1.0), 0.0, 1.0)[:, None]
    d = cy[:, sid]
    y = d[0] + u * (d[1] + u * (d[2] + u * d[3]))
    err = np.zeros(pos.shape)
    if g.n_rot:
        assert g.mode is not None and g.reference is not None
        err = rotation_angle_error(g.mode, y[:, : g.n_rot], g.reference[rows, t]) / rot_tol
    if g.has_loc:
        diff = y[:, g.n_rot:] - g.dense[rows, t, g.n_rot:]
        err = np.maximum(err, np.sqrt(np.einsum("ij,ij->i", diff, diff)) / loc_tol)
    return err


def _segments(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (flat index) of each segment [key, next key) over the flattened (G, T) arrays, and each frame's
    segment number."""
    flat_keep = keep.ravel()
    return np.flatnonzero(flat_keep), np.cumsum(flat_keep) - 1


def _reduce_group(g: _Group, tols: tuple[float, float, float]) -> np.ndarray:
    """Kept frames (G, T) of a group."""
    n_bones, n = g.keyed.shape[:2]
    keep = np.zeros((n_bones, n), dtype=bool)
    keep[:, ::INIT_STRIDE] = True
    keep[:, -1] = True
    err = _errors_at(g, keep, np.arange(n_bones * n), tols)
    # 1. Split every failing segment at its worst frame, level by level; only frames of split segments are
    #    evaluated again.
    for level in range(_MAX_SPLIT_LEVELS + 1):
        starts, seg_of = _segments(keep)
        failing = np.maximum.reduceat(err, starts)[seg_of] > SAFETY
        if not failing.any():
            break
        if level == _MAX_SPLIT_LEVELS:
            keep.ravel()[failing] = True  # pathological input: key every frame left (the bound still holds)
            err[failing] = 0.0
            break
        cand = np.flatnonzero(failing & (err > SAFETY))
        cand = cand[np.lexsort((-err[cand], seg_of[cand]))]
        first = np.concatenate([[True], seg_of[cand][1:] != seg_of[cand][:-1]])
        keep.ravel()[cand[first]] = True
        redo = np.flatnonzero(failing)
        err[redo] = _errors_at(g, keep, redo, tols)
    # 2. Try dropping every other interior key; keep the drop where the merged segment meets the tolerance.
    #    Alternate the parity until two rounds in a row drop nothing.
    idle = 0
    for rnd in range(_MAX_MERGE_ROUNDS):
        ordinal = np.cumsum(keep, axis=1) - 1
        drop = keep.copy()
        drop[:, 0] = drop[:, -1] = False
        drop &= ordinal % 2 == rnd % 2
        accepted = np.zeros(0, dtype=bool)
        if drop.any():
            trial = keep & ~drop
            starts, seg_of = _segments(trial)
            # Cheap first test: the error at the dropped key's own frame (most drops fail there).
            dropped = np.flatnonzero(drop)
            dropped = dropped[_errors_at(g, trial, dropped, tols) <= SAFETY]
            touched = np.zeros(starts.size, dtype=bool)
            touched[seg_of[dropped]] = True
            redo = np.flatnonzero(touched[seg_of])
            err_t = err.copy()
            err_t[redo] = _errors_at(g, trial, redo, tols)
            accepted = touched & (np.maximum.reduceat(err_t, starts) <= SAFETY)
        if accepted.any():
            idle = 0
            in_accepted = accepted[seg_of]
            keep.ravel()[drop.ravel() & in_accepted] = False
            err[in_accepted] = err_t[in_accepted]
        else:
            idle += 1
            if idle == 2:
                break
    return keep


def _make_groups(bones: Sequence[BoneChannels]) -> list[_Group]:
    by_sig: dict[tuple, list[int]] = {}
    for i, bone in enumerate(bones):
        signature = (bone.rotation_mode, bone.n_rotation, bone.location is not None, bone.num_frames)
        by_sig.setdefault(signature, []).append(i)
    groups = []
    for (mode, n_rot, has_loc, _n), members in by_sig.items():
        dense = np.stack([bones[i].stacked() for i in members])
        reference = rotation_reference(mode, dense[..., :n_rot]) if n_rot else None
        groups.append(_Group(members, mode, n_rot, has_loc, dense, _f32(dense), dense_slopes(dense), reference))
    return groups


def reduce_keys(
    bones: Sequence[BoneChannels],
    max_angle_deg: float,
    max_distance: float = 0.0,
    frame_offset: float = 0.0,
) -> tuple[list[ReducedKeys], ReductionReport]:
    """Keys for each bone such that the curves Blender evaluates stay within max_angle_deg of the dense rotation
    and max_distance of the dense location on every frame.

    frame_offset: the absolute frame of dense frame 0 (handles are rounded to float32 at their absolute time).
    A tolerance of 0 keys every frame of the channels it bounds (those keys get Blender's automatic handles)."""
    rot_tol = np.radians(max(0.0, float(max_angle_deg)))
    loc_tol = max(0.0, float(max_distance))
    out: list[ReducedKeys | None] = [None] * len(bones)
    dense_keys = 0
    for g in _make_groups(bones):
        n_bones, n = g.keyed.shape[:2]
        dense_keys += n_bones * n * g.keyed.shape[2]
        every_frame = n <= 2 or (g.n_rot and rot_tol <= 0) or (g.has_loc and loc_tol <= 0)
        if every_frame:
            keep = np.ones((n_bones, n), dtype=bool)
        else:
            keep = _reduce_group(g, (frame_offset, rot_tol if g.n_rot else 1.0, loc_tol if g.has_loc else 1.0))
        for row, i in enumerate(g.members):
            frames = np.flatnonzero(keep[row])
            max_angle = max_dist = 0.0
            if not every_frame:
                y = evaluate_keys(
                    ReducedKeys(frames, g.keyed[row, frames], g.slopes[row, frames], g.n_rot, 0.0, 0.0),
                    frame_offset, n,
                )
                if g.n_rot:
                    assert g.mode is not None and g.reference is not None
                    max_angle = float(np.degrees(rotation_angle_error(g.mode, y[:, : g.n_rot], g.reference[row]).max()))
                if g.has_loc:
                    max_dist = float(np.linalg.norm(y[:, g.n_rot:] - g.dense[row, :, g.n_rot:], axis=-1).max())
            out[i] = ReducedKeys(
                frames=frames,
                values=g.keyed[row, frames],
                slopes=None if every_frame else g.slopes[row, frames],
                n_rotation=g.n_rot,
                max_angle_deg=max_angle,
                max_distance=max_dist,
            )
    result = [r for r in out if r is not None]
    report = ReductionReport(
        keys=sum(r.num_keys for r in result),
        dense_keys=dense_keys,
        max_angle_deg=max((r.max_angle_deg for r in result), default=0.0),
        max_distance=max((r.max_distance for r in result), default=0.0),
    )
    return result, report
