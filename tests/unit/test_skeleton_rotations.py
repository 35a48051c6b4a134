"""Rotation conversions and the canonical skeleton."""

from __future__ import annotations

import numpy as np
import pytest

from gestura.inference import rotations as R
from gestura.inference import skeleton as S


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _rand_quats(rng, n=200):
    return R.quat_normalize(rng.normal(size=(n, 4)))


def _same_rotation(a, b, tol=1e-9):
    return np.allclose(np.abs(np.sum(a * b, axis=-1)), 1.0, atol=tol)


def test_quat_matrix_round_trip(rng):
    q = _rand_quats(rng)
    assert _same_rotation(R.matrix_to_quat(R.quat_to_matrix(q)), q)
    assert np.all(R.matrix_to_quat(R.quat_to_matrix(q))[..., 0] >= 0)
    m = R.quat_to_matrix(q)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)


def test_quat_rotate_matches_matrix(rng):
    q = _rand_quats(rng)
    v = rng.normal(size=(len(q), 3))
    assert np.allclose(R.quat_rotate(q, v), np.einsum("nij,nj->ni", R.quat_to_matrix(q), v))


def test_quat_mul_composes_like_matrices(rng):
    a, b = _rand_quats(rng), _rand_quats(rng)
    assert np.allclose(R.quat_to_matrix(R.quat_mul(a, b)), R.quat_to_matrix(a) @ R.quat_to_matrix(b))
    assert np.allclose(R.quat_mul(a, R.quat_conj(a)), R.quat_identity((len(a),)), atol=1e-12)


def test_sixd_round_trip(rng):
    q = _rand_quats(rng)
    assert _same_rotation(R.sixd_to_quat(R.quat_to_6d(q)), q)
    m = R.quat_to_matrix(q)
    assert np.allclose(R.sixd_to_matrix(R.matrix_to_6d(m)), m)
    # 6D from a perturbed (non-orthonormal) input still gives a rotation
    noisy = R.sixd_to_matrix(R.matrix_to_6d(m) + 0.05 * rng.normal(size=(len(q), 6)))
    assert np.allclose(noisy @ np.swapaxes(noisy, -1, -2), np.eye(3), atol=1e-9)


def test_axis_angle_round_trip(rng):
    q = _rand_quats(rng)
    assert _same_rotation(R.axis_angle_to_quat(R.quat_to_axis_angle(q)), q)
    axis = rng.normal(size=(50, 3))
    aa = axis / np.linalg.norm(axis, axis=-1, keepdims=True) * rng.uniform(0, 3.0, (50, 1))  # angles < pi
    assert np.allclose(R.quat_to_axis_angle(R.axis_angle_to_quat(aa)), aa, atol=1e-9)
    assert np.allclose(R.axis_angle_to_quat(np.zeros(3)), [1, 0, 0, 0])
    assert np.allclose(R.quat_to_axis_angle(np.array([1.0, 0, 0, 0])), 0.0)


def test_axis_angle_sign_convention():
    # +90 degrees about +Z takes +X to +Y (right-handed)
    q = R.quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), np.pi / 2)
    assert np.allclose(R.quat_rotate(q, np.array([1.0, 0, 0])), [0, 1, 0])
    assert np.allclose(R.quat_to_matrix(q), R.euler_to_matrix(np.array([0, 0, np.pi / 2])))


@pytest.mark.parametrize("order", R.EULER_ORDERS)
def test_euler_round_trip(order, rng):
    e = rng.uniform(-1.5, 1.5, (300, 3))
    m = R.euler_to_matrix(e, order)
    assert np.allclose(R.matrix_to_euler(m, order), e, atol=1e-9)
    # any rotation: matrix equality (angles may differ by equivalent sets)
    m2 = R.quat_to_matrix(_rand_quats(rng))
    assert np.allclose(R.euler_to_matrix(R.matrix_to_euler(m2, order), order), m2, atol=1e-9)


@pytest.mark.parametrize("order", R.EULER_ORDERS)
def test_euler_order_is_applied_first_to_last(order):
    angles = np.array([0.3, -0.5, 0.7])
    idx = {"X": 0, "Y": 1, "Z": 2}
    expected = np.eye(3)
    for axis in order:  # first letter applied first
        e = np.zeros(3)
        e[idx[axis]] = angles[idx[axis]]
        expected = R.euler_to_matrix(e, "XYZ") @ expected
    assert np.allclose(R.euler_to_matrix(angles, order), expected)


@pytest.mark.parametrize("order", R.EULER_ORDERS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_matrix_to_euler_gimbal_lock(order, sign, rng):
    e = rng.uniform(-3.0, 3.0, (50, 3))
    e[:, {"X": 0, "Y": 1, "Z": 2}[order[1]]] = sign * np.pi / 2
    m = R.euler_to_matrix(e, order)
    back = R.matrix_to_euler(m, order)
    assert np.all(np.isfinite(back))
    assert np.allclose(R.euler_to_matrix(back, order), m, atol=1e-9)


def test_matrix_to_euler_rejects_unknown_order():
    with pytest.raises(ValueError):
        R.matrix_to_euler(np.eye(3), "XXY")


def test_slerp_endpoints_and_midpoint(rng):
    a, b = _rand_quats(rng, 20), _rand_quats(rng, 20)
    assert _same_rotation(R.quat_slerp(a, b, 0.0), a)
    assert _same_rotation(R.quat_slerp(a, b, 1.0), b)
    q = R.quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), 1.0)
    mid = R.quat_slerp(R.quat_identity(), q, 0.5)
    assert np.allclose(R.quat_to_axis_angle(mid), [0, 0.5, 0])
    # takes the short way even when b is given on the other hemisphere
    mid2 = R.quat_slerp(R.quat_identity(), -q, 0.5)
    assert _same_rotation(mid2, mid)


def test_quat_between(rng):
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    q = R.quat_between(a, b)
    rb = R.quat_rotate(q, a / np.linalg.norm(a, axis=-1, keepdims=True))
    assert np.allclose(rb, b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-9)
    opp = R.quat_between(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]))
    assert np.allclose(R.quat_rotate(opp, np.array([1.0, 0, 0])), [-1, 0, 0], atol=1e-9)


def test_make_continuous(rng):
    q = R.quat_slerp(R.quat_identity(), R.quat_from_axis_angle(np.array([0, 0, 1.0]), 2.0), np.linspace(0, 1, 30))
    flipped = q * np.where(rng.random(30) < 0.5, -1.0, 1.0)[:, None]
    c = R.quat_make_continuous(flipped)
    assert np.all(np.sum(c[1:] * c[:-1], -1) > 0)
    assert _same_rotation(c, q)


# ----------------------------------------------------------------------------------------------------
# Skeleton


def test_skeleton_shape_and_order():
    assert S.NUM_JOINTS == 52 == len(S.JOINT_NAMES) == len(set(S.JOINT_NAMES))
    assert S.REST_OFFSETS.shape == (52, 3)
    assert S.PARENTS[0] == -1 and sum(p < 0 for p in S.PARENTS) == 1
    for j, p in enumerate(S.PARENTS):
        assert p < j, f"{S.JOINT_NAMES[j]} comes before its parent"
    for name, i in S.JOINT_INDEX.items():
        assert S.JOINT_NAMES[i] == name


def test_fk_of_rest_pose_is_rest_positions():
    rest = R.quat_identity((52,))
    glob, pos = S.forward_kinematics(rest)
    assert np.allclose(pos, S.rest_positions())
    assert np.allclose(glob, rest)
    # batched and with an explicit root
    root = np.array([[0.5, 1.0, -0.2], [0.0, 0.93, 0.0]])
    _, pos2 = S.forward_kinematics(np.stack([rest, rest]), root)
    assert np.allclose(pos2[0], S.rest_positions() - [0, S.REST_PELVIS_HEIGHT, 0] + root[0])


def test_fk_rotating_a_joint_moves_its_subtree_only():
    rot = R.quat_identity((52,))
    rot[S.JOINT_INDEX["left_elbow"]] = R.quat_from_axis_angle(np.array([0, -1.0, 0]), np.pi / 2)
    _, pos = S.forward_kinematics(rot)
    rest = S.rest_positions()
    moved = np.linalg.norm(pos - rest, axis=-1) > 1e-9
    sub = {S.JOINT_INDEX[n] for n in S.JOINT_NAMES if n.startswith("left_") and (
        n in ("left_wrist",) or n[5:-1] in S.FINGERS)}
    assert set(np.flatnonzero(moved)) == sub
    # forearm now points forward (+Z): flexion of a T-pose arm with palm down
    e, w = pos[S.JOINT_INDEX["left_elbow"]], pos[S.JOINT_INDEX["left_wrist"]]
    assert (w - e)[2] > 0.24


def test_body_parts_cover_each_joint_once():
    seen = [j for joints in S.BODY_PARTS.values() for j in joints]
    assert sorted(seen) == sorted(S.JOINT_NAMES)
    assert len(seen) == len(set(seen))
    assert set(S.PART_OF_JOINT) == set(S.JOINT_NAMES)


def test_left_right_mirror_symmetry():
    for j, name in enumerate(S.JOINT_NAMES):
        m = S.MIRROR_INDEX[j]
        if name.startswith(("left_", "right_")):
            assert S.JOINT_NAMES[m] != name
            assert S.JOINT_NAMES[m].split("_", 1)[1] == name.split("_", 1)[1]
        else:
            assert m == j
            assert S.REST_OFFSETS[j][0] == 0.0
        assert np.allclose(S.REST_OFFSETS[m], S.REST_OFFSETS[j] * [-1, 1, 1])
        assert np.allclose(S.REST_BONE_VECTORS[m], S.REST_BONE_VECTORS[j] * [-1, 1, 1])
        pm = S.PARENTS[m]
        assert (pm < 0 and S.PARENTS[j] < 0) or pm == S.MIRROR_INDEX[S.PARENTS[j]]


def test_rest_pose_is_plausible_t_pose():
    p = S.rest_positions()
    J = S.JOINT_INDEX
    assert p[J["head"], 1] > p[J["neck"], 1] > p[J["spine3"], 1] > p[J["pelvis"], 1] > p[J["left_knee"], 1]
    assert abs(p[J["left_foot"], 1]) < 0.1  # feet near the ground
    assert p[J["left_wrist"], 0] > p[J["left_elbow"], 0] > p[J["left_shoulder"], 0] > 0  # left is +X
    assert p[J["left_foot"], 2] > p[J["left_ankle"], 2]  # toes point forward (+Z)
    assert p[J["left_thumb1"], 2] > p[J["left_pinky1"], 2]  # palms down: thumb forward
    assert np.all(np.linalg.norm(S.REST_BONE_VECTORS, axis=-1) > 1e-3)


def test_bone_directions_unit_and_rest():
    glob, _ = S.forward_kinematics(R.quat_identity((52,)))
    d = S.bone_directions(glob)
    assert np.allclose(np.linalg.norm(d, axis=-1), 1.0)
    assert np.allclose(d[S.JOINT_INDEX["left_shoulder"]], S.REST_OFFSETS[S.JOINT_INDEX["left_elbow"]] /
                       np.linalg.norm(S.REST_OFFSETS[S.JOINT_INDEX["left_elbow"]]))
