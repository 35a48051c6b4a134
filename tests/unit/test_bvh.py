"""BVH export: parse our own output and check hierarchy, channels and that the rotations round-trip."""

from __future__ import annotations

import re

import numpy as np

from gestura.inference import skeleton as S
from gestura.inference.bvh import write_bvh
from gestura.inference.motion import CanonicalMotion
from gestura.inference.rotations import euler_to_matrix, quat_normalize, quat_to_matrix


def _parse_bvh(text: str):
    head, motion = text.split("MOTION")
    joints, offsets, channels, end_sites, parents = [], [], [], [], []
    stack: list[int] = []
    pending = None
    for line in head.splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] in ("ROOT", "JOINT"):
            pending = tok[1]
        elif tok[0] == "End":
            pending = "__end__"
        elif tok[0] == "{":
            if pending == "__end__":
                stack.append(-1)
            else:
                parents.append(stack[-1] if stack else -1)
                joints.append(pending)
                stack.append(len(joints) - 1)
            pending = None
        elif tok[0] == "}":
            stack.pop()
        elif tok[0] == "OFFSET":
            off = np.array([float(x) for x in tok[1:4]])
            if stack[-1] == -1:
                end_sites.append((joints[stack[-2]], off))
            else:
                offsets.append(off)
        elif tok[0] == "CHANNELS":
            channels.append(tok[2:2 + int(tok[1])])
    lines = [ln for ln in motion.strip().splitlines() if ln.strip()]
    n = int(re.match(r"Frames:\s*(\d+)", lines[0]).group(1))
    frame_time = float(re.match(r"Frame Time:\s*([\d.eE+-]+)", lines[1]).group(1))
    data = np.array([[float(x) for x in ln.split()] for ln in lines[2:]])
    return joints, parents, np.array(offsets), channels, end_sites, n, frame_time, data


def _random_motion(n=12, seed=0):
    rng = np.random.default_rng(seed)
    rot = quat_normalize(rng.normal(size=(n, 52, 4)))
    root = rng.normal(size=(n, 3)) * 0.2 + [0, 0.93, 0]
    return CanonicalMotion(rot, root, fps=30.0)


def test_hierarchy_matches_skeleton(tmp_path):
    m = _random_motion()
    path = tmp_path / "out.bvh"
    write_bvh(m, path)
    joints, parents, offsets, channels, end_sites, n, ft, data = _parse_bvh(path.read_text())
    assert sorted(joints) == sorted(S.JOINT_NAMES) and len(joints) == 52
    for j, name in enumerate(joints):
        p = parents[j]
        assert (p < 0 and S.PARENTS[S.JOINT_INDEX[name]] < 0) or S.JOINT_INDEX[joints[p]] == S.PARENTS[
            S.JOINT_INDEX[name]]
        if p >= 0:
            assert np.allclose(offsets[j] / 100.0, S.REST_OFFSETS[S.JOINT_INDEX[name]], atol=1e-6)
    leaves = [S.JOINT_NAMES[j] for j in range(52) if not S.CHILDREN[j]]
    assert sorted(name for name, _ in end_sites) == sorted(leaves)
    for name, off in end_sites:
        assert np.allclose(off / 100.0, S.REST_BONE_VECTORS[S.JOINT_INDEX[name]], atol=1e-6)
    assert channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(c == ["Zrotation", "Xrotation", "Yrotation"] for c in channels[1:])
    assert n == m.num_frames and data.shape == (n, 3 + 52 * 3)
    assert abs(ft - 1 / 30) < 1e-6


def test_rotations_and_root_round_trip(tmp_path):
    m = _random_motion(n=20, seed=3)
    path = tmp_path / "rt.bvh"
    write_bvh(m, path, scale=1.0)
    joints, _, _, _, _, n, _, data = _parse_bvh(path.read_text())
    assert np.allclose(data[:, :3], m.root, atol=1e-4)
    ang = np.radians(data[:, 3:].reshape(n, 52, 3))  # Z, X, Y per joint
    for j, name in enumerate(joints):
        z, x, y = ang[:, j, 0], ang[:, j, 1], ang[:, j, 2]
        rz = euler_to_matrix(np.stack([0 * z, 0 * z, z], -1), "XYZ")
        rx = euler_to_matrix(np.stack([x, 0 * x, 0 * x], -1), "XYZ")
        ry = euler_to_matrix(np.stack([0 * y, y, 0 * y], -1), "XYZ")
        got = rz @ rx @ ry  # BVH: channels applied as listed, R = Rz Rx Ry
        want = quat_to_matrix(m.rotations[:, S.JOINT_INDEX[name]])
        assert np.allclose(got, want, atol=1e-4), name


def test_known_angle_and_units(tmp_path):
    m = CanonicalMotion.rest(3)
    # 30 degrees about Z at the left elbow
    m.rotations[:, S.JOINT_INDEX["left_elbow"]] = [np.cos(np.pi / 12), 0, 0, np.sin(np.pi / 12)]
    path = tmp_path / "k.bvh"
    write_bvh(m, path)
    joints, _, _, _, _, n, _, data = _parse_bvh(path.read_text())
    j = joints.index("left_elbow")
    assert np.allclose(data[:, 3 + 3 * j: 6 + 3 * j], [30.0, 0.0, 0.0], atol=1e-4)
    assert np.allclose(data[:, 1], S.REST_PELVIS_HEIGHT * 100.0)
    others = np.delete(data[:, 3:].reshape(n, 52, 3), j, axis=1)
    assert np.allclose(others, 0.0, atol=1e-6)


def test_angles_are_continuous_across_frames(tmp_path):
    t = np.linspace(0, 4 * np.pi, 60)
    m = CanonicalMotion.rest(60)
    m.rotations[:, S.JOINT_INDEX["head"]] = np.stack([np.cos(t / 2), 0 * t, np.sin(t / 2), 0 * t], -1)
    path = tmp_path / "c.bvh"
    write_bvh(m, path)
    joints, _, _, _, _, _n, _, data = _parse_bvh(path.read_text())
    j = joints.index("head")
    assert np.max(np.abs(np.diff(data[:, 3 + 3 * j: 6 + 3 * j], axis=0))) < 20.0
