"""Training data readers on small files the tests write: BVH parsing, BEAT / ZEGGS retargeting by rest pose
(with the known defects), BEAT2 SMPL-X npz, the procedural corpus, and the one training format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gestura.inference.rotations import (
    axis_angle_to_quat,
    euler_to_matrix,
    matrix_to_euler,
    quat_to_axis_angle,
)
from gestura.inference.skeleton import (
    _TIPS,
    JOINT_INDEX,
    JOINT_NAMES,
    PRIMARY_CHILD,
    REST_PELVIS_HEIGHT,
    bone_directions,
    forward_kinematics,
    rest_positions,
)
from gestura.training.data.beat import (
    beat_emotion_from_name,
    read_beat,
    read_emotion_csv,
    read_zeggs,
    resolve_frame_time,
    zeggs_style,
)
from gestura.training.data.beat2 import iter_beat2, read_beat2
from gestura.training.data.bvh_reader import BvhError, parse_bvh
from gestura.training.data.format import SPLITS, Sample, split_of
from gestura.training.data.procedural import iter_procedural

SR = 16000
FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")


# --- a BEAT/ZEGGS-like 75-joint skeleton, built around the canonical T-pose --------------------------------


def _source_skeleton() -> tuple[list[str], list[int], np.ndarray, dict[str, str]]:
    """Names, parents, rest world positions (metres) and the canonical joint -> source joint table.

    Extra joints the canonical skeleton lacks, merged into canonical bones: Spine2 (between spine2 and spine3),
    Neck1, arm and forearm roll joints, ForeFoot; and end joints: HeadEnd, finger segment 4, ToeBaseEnd."""
    canon = rest_positions()
    names: list[str] = []
    parents: list[int] = []
    pos: list[np.ndarray] = []
    canon_to_src: dict[str, str] = {}

    def add(name: str, parent: str | None, p: np.ndarray, canonical: str | None = None) -> None:
        names.append(name)
        parents.append(names.index(parent) if parent else -1)
        pos.append(np.asarray(p, dtype=np.float64))
        if canonical:
            canon_to_src[canonical] = name

    c = {n: canon[i] for i, n in enumerate(JOINT_NAMES)}
    add("Hips", None, c["pelvis"], "pelvis")
    add("Spine", "Hips", c["spine1"], "spine1")
    add("Spine1", "Spine", c["spine2"], "spine2")
    add("Spine2", "Spine1", 0.5 * (c["spine2"] + c["spine3"]))
    add("Spine3", "Spine2", c["spine3"], "spine3")
    add("Neck", "Spine3", c["neck"], "neck")
    add("Neck1", "Neck", 0.5 * (c["neck"] + c["head"]))
    add("Head", "Neck1", c["head"], "head")
    add("HeadEnd", "Head", c["head"] + _TIPS["head"])
    for side, lr in (("Left", "left"), ("Right", "right")):
        add(f"{side}Shoulder", "Spine3", c[f"{lr}_collar"], f"{lr}_collar")
        add(f"{side}Arm", f"{side}Shoulder", c[f"{lr}_shoulder"], f"{lr}_shoulder")
        add(f"{side}ArmRoll", f"{side}Arm", 0.5 * (c[f"{lr}_shoulder"] + c[f"{lr}_elbow"]))
        add(f"{side}ForeArm", f"{side}ArmRoll", c[f"{lr}_elbow"], f"{lr}_elbow")
        add(f"{side}ForeArmRoll", f"{side}ForeArm", 0.5 * (c[f"{lr}_elbow"] + c[f"{lr}_wrist"]))
        add(f"{side}Hand", f"{side}ForeArmRoll", c[f"{lr}_wrist"], f"{lr}_wrist")
        for finger in FINGERS:
            f = finger.lower()
            parent = f"{side}Hand"
            for seg in (1, 2, 3):
                add(f"{side}Hand{finger}{seg}", parent, c[f"{lr}_{f}{seg}"], f"{lr}_{f}{seg}")
                parent = f"{side}Hand{finger}{seg}"
            add(f"{side}Hand{finger}4", parent, c[f"{lr}_{f}3"] + _TIPS[f"{lr}_{f}3"])
    for side, lr in (("Left", "left"), ("Right", "right")):
        add(f"{side}UpLeg", "Hips", c[f"{lr}_hip"], f"{lr}_hip")
        add(f"{side}Leg", f"{side}UpLeg", c[f"{lr}_knee"], f"{lr}_knee")
        add(f"{side}Foot", f"{side}Leg", c[f"{lr}_ankle"], f"{lr}_ankle")
        add(f"{side}ForeFoot", f"{side}Foot", 0.5 * (c[f"{lr}_ankle"] + c[f"{lr}_foot"]))
        add(f"{side}ToeBase", f"{side}ForeFoot", c[f"{lr}_foot"], f"{lr}_foot")
        add(f"{side}ToeBaseEnd", f"{side}ToeBase", c[f"{lr}_foot"] + _TIPS[f"{lr}_foot"])
    return names, parents, np.stack(pos), canon_to_src


NAMES, SRC_PARENTS, SRC_REST, CANON_TO_SRC = _source_skeleton()
assert len(NAMES) == 73  # BEAT's 75 less two it has on the legs


def _descendants(root: str) -> list[int]:
    out = [NAMES.index(root)]
    for i, p in enumerate(SRC_PARENTS):
        if p in out:
            out.append(i)
    return out


def a_pose_rest(degrees: float = 40.0) -> np.ndarray:
    """The skeleton with both arms lowered by `degrees` about the shoulder joints (an A-pose rest)."""
    pos = SRC_REST.copy()
    for side, sign in (("Left", -1.0), ("Right", 1.0)):
        pivot = pos[NAMES.index(f"{side}Arm")].copy()
        rot = euler_to_matrix(np.radians([0.0, 0.0, sign * degrees]), "XYZ")
        for i in _descendants(f"{side}Arm"):
            pos[i] = pivot + rot @ (pos[i] - pivot)
    return pos


def write_bvh(
    path: Path, rest_world: np.ndarray, local_rot: np.ndarray, root_pos: np.ndarray, *, frame_time: float,
    order: str = "ZXY", unit: float = 100.0, crlf: bool = False,
) -> None:
    """A BVH of the source skeleton: rest world positions (m), local rotation matrices (T, 75, 3, 3), root
    positions (T, 3) in metres. Channels: `order` as written (e.g. "ZXY" -> Zrotation Xrotation Yrotation)."""
    offsets = np.stack([rest_world[i] - (rest_world[p] if p >= 0 else 0.0) for i, p in enumerate(SRC_PARENTS)])
    rot_ch = " ".join(f"{a}rotation" for a in order)
    lines = ["HIERARCHY"]
    kids = {i: [k for k, p in enumerate(SRC_PARENTS) if p == i] for i in range(len(NAMES))}

    def emit(i: int, depth: int) -> None:
        ind = "\t" * depth
        kind = "ROOT" if SRC_PARENTS[i] < 0 else "JOINT"
        lines.append(f"{ind}{kind} {NAMES[i]}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET " + " ".join(f"{v * unit:.6f}" for v in offsets[i]))
        pos_ch = "Xposition Yposition Zposition " if SRC_PARENTS[i] < 0 else ""
        lines.append(f"{ind}\tCHANNELS {6 if pos_ch else 3} {pos_ch}{rot_ch}")
        for k in kids[i]:
            emit(k, depth + 1)
        if not kids[i]:
            lines.extend([f"{ind}\tEnd Site", f"{ind}\t{{", f"{ind}\t\tOFFSET 0.0 1.0 0.0", f"{ind}\t}}"])
        lines.append(f"{ind}}}")

    emit(0, 0)
    dfs = list(range(len(NAMES)))  # parents precede children and emit() visits in index order here
    n = local_rot.shape[0]
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {frame_time:.8f}"]
    euler = np.degrees(matrix_to_euler(local_rot, order[::-1]))  # channels Z X Y -> our Euler order "YXZ"
    idx = {"X": 0, "Y": 1, "Z": 2}
    for t in range(n):
        vals: list[float] = []
        for i in dfs:
            if SRC_PARENTS[i] < 0:
                vals += list(root_pos[t] * unit)
            vals += [euler[t, i, idx[a]] for a in order]
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    path.write_text(("\r\n" if crlf else "\n").join(lines) + "\n")


def _emit_order_is_index_order() -> bool:
    kids_first = []

    def visit(i: int) -> None:
        kids_first.append(i)
        for k in (k for k, p in enumerate(SRC_PARENTS) if p == i):
            visit(k)

    visit(0)
    return kids_first == list(range(len(NAMES)))


def test_skeleton_helper_is_in_dfs_order() -> None:
    assert _emit_order_is_index_order()  # write_bvh writes frame values in index order


def write_wav(path: Path, seconds: float) -> None:
    t = np.arange(int(round(seconds * SR))) / SR
    y = 0.3 * np.sin(2 * np.pi * 180.0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.0 * t))
    sf.write(str(path), y.astype(np.float32), SR, subtype="PCM_16")


def write_textgrid(path: Path, words: list[tuple[str, float, float]], duration: float) -> None:
    from praatio import textgrid

    tier = textgrid.IntervalTier("words", [(a, b, w) for w, a, b in words], 0.0, duration)
    tg = textgrid.Textgrid()
    tg.addTier(tier)
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def random_local(n: int, seed: int, max_deg: float = 35.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth random rotations: a few sinusoids per joint and axis.
    t = np.arange(n)[:, None, None]
    amp = np.radians(rng.uniform(-max_deg, max_deg, (1, len(NAMES), 3)))
    freq = rng.uniform(0.01, 0.05, (1, len(NAMES), 3))
    phase = rng.uniform(0, 2 * np.pi, (1, len(NAMES), 3))
    return euler_to_matrix(amp * np.sin(2 * np.pi * freq * t + phase), "XYZ")


def identity_local(n: int) -> np.ndarray:
    return np.broadcast_to(np.eye(3), (n, len(NAMES), 3, 3)).copy()


def standing_root(n: int) -> np.ndarray:
    return np.tile(SRC_REST[0], (n, 1))


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


def source_bone_directions(rest_world: np.ndarray, local_rot: np.ndarray, root_pos: np.ndarray) -> np.ndarray:
    """(T, 52, 3) world direction, in the source file, of the bone each canonical joint stands for."""
    offsets = np.stack([rest_world[i] - (rest_world[p] if p >= 0 else 0.0) for i, p in enumerate(SRC_PARENTS)])
    n = local_rot.shape[0]
    g = np.empty_like(local_rot)
    pos = np.empty((n, len(NAMES), 3))
    for i, p in enumerate(SRC_PARENTS):
        if p < 0:
            g[:, i], pos[:, i] = local_rot[:, i], root_pos
        else:
            g[:, i] = g[:, p] @ local_rot[:, i]
            pos[:, i] = pos[:, p] + np.einsum("tab,b->ta", g[:, p], offsets[i])
    ends = {"head": "HeadEnd", "left_foot": "LeftToeBaseEnd", "right_foot": "RightToeBaseEnd"}
    out = np.zeros((n, 52, 3))
    for j, name in enumerate(JOINT_NAMES):
        child = PRIMARY_CHILD[j]
        if child >= 0:
            tip = CANON_TO_SRC[JOINT_NAMES[child]]
        elif name in ends:
            tip = ends[name]
        else:  # finger 3 -> finger 4
            side, finger = name.split("_")
            tip = f"{side.capitalize()}Hand{finger[:-1].capitalize()}4"
        out[:, j] = pos[:, NAMES.index(tip)] - pos[:, NAMES.index(CANON_TO_SRC[name])]
    return out


def make_take(
    folder: Path, stem: str, local_rot: np.ndarray, *, rest: np.ndarray | None = None, fps: float = 30.0,
    header_fps: float | None = None, audio_seconds: float | None = None, root: np.ndarray | None = None,
    words: list[tuple[str, float, float]] | None = None, **kw: object,
) -> Path:
    n = local_rot.shape[0]
    path = folder / f"{stem}.bvh"
    write_bvh(path, SRC_REST if rest is None else rest, local_rot, standing_root(n) if root is None else root,
              frame_time=1.0 / (header_fps or fps), **kw)  # type: ignore[arg-type]
    seconds = n / fps if audio_seconds is None else audio_seconds
    write_wav(folder / f"{stem}.wav", seconds)
    if words is not None:
        write_textgrid(folder / f"{stem}.TextGrid", words, seconds)
    return path


# --- BVH parser ---------------------------------------------------------------------------------------------


SMALL_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 90 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 10 0 0
    CHANNELS 3 Xrotation Zrotation Yrotation
    End Site
    {
      OFFSET 20 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0
0 95 0 90 0 0 0 0 30
"""


def test_bvh_parser_reads_hierarchy_channels_and_rotation_orders() -> None:
    bvh = parse_bvh(SMALL_BVH.replace("\n", "\r\n").replace("  ", "\t"), "small.bvh")
    assert bvh.names == ["Hips", "Arm"] and bvh.parents == [-1, 0]
    assert bvh.rotation_orders == ["XYZ", "YZX"]  # Z Y X channels -> R = Rz Ry Rx; X Z Y -> R = Rx Rz Ry
    assert np.allclose(bvh.offsets, [[0, 90, 0], [10, 0, 0]]) and np.allclose(bvh.end_sites[1], [20, 0, 0])
    assert bvh.num_frames == 2 and abs(bvh.frame_time - 1 / 30) < 1e-6
    assert np.allclose(bvh.positions[0, 0], [1, 2, 3]) and np.allclose(bvh.positions[:, 1], [10, 0, 0])
    rot, pos = bvh.global_transforms()
    # Frame 1: hips turned 90 deg about Z, so the arm (offset +X) points up; the arm's own 30 deg about Y.
    assert np.allclose(pos[1, 1], [0, 105, 0], atol=1e-9)
    assert np.allclose(rot[1, 1], euler_to_matrix(np.radians([0, 30, 90]), "YZX"), atol=1e-9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SMALL_BVH.replace("Frames: 2", "Frames: 3"), "3 frames"),
        (SMALL_BVH.replace("0 95 0", "0 x 0"), "not a number"),
        (SMALL_BVH.replace("CHANNELS 3 Xrotation Zrotation Yrotation", "CHANNELS 3 Xrotation Zrotation Wrot"),
         "unknown channel"),
        (SMALL_BVH.split("MOTION", maxsplit=1)[0], "unexpected end of file"),
        (SMALL_BVH.replace("HIERARCHY", "HIERARCHX"), "expected 'HIERARCHY'"),
        (SMALL_BVH.replace("0.0333333", "0"), "frame time"),
        (SMALL_BVH.replace("0 95 0", "0 nan 0"), "NaN"),
    ],
)
def test_bvh_parser_reports_malformed_files(text: str, message: str) -> None:
    with pytest.raises(BvhError, match=message):
        parse_bvh(text, "bad.bvh")


# --- BEAT / ZEGGS retargeting -------------------------------------------------------------------------------


def test_t_pose_take_is_identity_and_root_in_metres(tmp_path: Path) -> None:
    n = 30
    root = standing_root(n) + np.linspace([0, 0, 0], [0.3, 0.05, 0.2], n)
    s = read_beat(make_take(tmp_path, "1_wayne_0_1_1", identity_local(n), root=root))
    assert s.rotations.shape == (n, 52, 4) and s.rotations.dtype == np.float32
    assert np.allclose(np.abs(s.rotations[..., 0]), 1.0, atol=1e-5)
    assert np.allclose(s.root, root, atol=1e-4)  # written in cm, read back in m (canonical proportions)
    assert s.speaker == "wayne" and s.emotion == "neutral" and s.fps == 30.0


def test_left_elbow_bend_maps_to_left_elbow_only(tmp_path: Path) -> None:
    n = 10
    local = identity_local(n)
    bend = euler_to_matrix(np.radians([0.0, -90.0, 0.0]), "XYZ")  # -90 deg about +Y: the forearm swings forward
    local[:, NAMES.index("LeftForeArm")] = bend
    s = read_beat(make_take(tmp_path, "2_scott_0_2_2", local))
    elbow = JOINT_INDEX["left_elbow"]
    aa = quat_to_axis_angle(s.rotations[:, elbow].astype(np.float64))
    assert np.allclose(aa, [0.0, -np.pi / 2, 0.0], atol=1e-3)
    others = np.delete(s.rotations, elbow, axis=1)
    assert np.allclose(np.abs(others[..., 0]), 1.0, atol=1e-5)
    _, pos = forward_kinematics(s.rotations[0])
    wrist_dir = pos[JOINT_INDEX["left_wrist"]] - pos[elbow]
    assert wrist_dir[2] > 0.99 * np.linalg.norm(wrist_dir)  # forearm points forward (+Z), the character's front


@pytest.mark.parametrize("rest_kind", ["t_pose", "a_pose"])
def test_canonical_bone_directions_follow_the_file_frame_by_frame(tmp_path: Path, rest_kind: str) -> None:
    n = 24
    rest = SRC_REST if rest_kind == "t_pose" else a_pose_rest(40.0)
    local = random_local(n, seed=3)
    root = standing_root(n)
    s = read_beat(make_take(tmp_path, "3_solomon_0_3_3", local, rest=rest, root=root))
    want = source_bone_directions(rest, local, root)
    glob, _ = forward_kinematics(s.rotations.astype(np.float64), s.root.astype(np.float64))
    got = bone_directions(glob)
    err = angle_deg(got, want)
    err[:, JOINT_INDEX["pelvis"]] = 0.0  # the pelvis has no direction match (see beat.py)
    assert err.max() < 1.0, (JOINT_NAMES[int(np.argmax(err.max(0)))], err.max())


def test_a_pose_rest_without_motion_puts_the_arms_in_the_a_pose(tmp_path: Path) -> None:
    s = read_beat(make_take(tmp_path, "4_lawrence_0_4_4", identity_local(5), rest=a_pose_rest(40.0)))
    _, pos = forward_kinematics(s.rotations[0].astype(np.float64))
    upper = pos[JOINT_INDEX["left_elbow"]] - pos[JOINT_INDEX["left_shoulder"]]
    assert abs(np.degrees(np.arctan2(-upper[1], upper[0])) - 40.0) < 0.5  # 40 deg below horizontal
    legs = [JOINT_INDEX[n] for n in ("left_knee", "right_knee", "spine2", "head")]
    assert np.allclose(np.abs(s.rotations[0, legs, 0]), 1.0, atol=1e-5)


def test_facing_is_read_from_the_rest_pose(tmp_path: Path) -> None:
    """The same take with the whole character turned to face +X gives the same canonical motion."""
    n = 12
    local = random_local(n, seed=5)
    turn = euler_to_matrix(np.radians([0.0, 90.0, 0.0]), "XYZ")
    turned_local = turn @ local @ turn.T  # every joint frame is world-aligned at rest, so all turn
    turned_rest = SRC_REST @ turn.T
    a = read_beat(make_take(tmp_path, "5_a_0_5_5", local))
    b = read_beat(make_take(tmp_path, "5_b_0_5_5", turned_local, rest=turned_rest, root=standing_root(n) @ turn.T))
    dots = np.abs(np.sum(a.rotations.astype(np.float64) * b.rotations, -1))
    assert dots.min() > 1 - 1e-6
    assert np.allclose(a.root, b.root, atol=1e-4)


def test_120fps_resampled_to_30_keeps_duration_and_follows_the_motion(tmp_path: Path) -> None:
    fps, seconds = 120.0, 2.0
    n = int(fps * seconds)
    local = identity_local(n)
    angle = np.radians(60.0) * np.sin(2 * np.pi * 0.5 * np.arange(n) / fps)  # slow: unchanged by the filter
    local[:, NAMES.index("LeftForeArm")] = euler_to_matrix(np.stack([0 * angle, angle, 0 * angle], -1), "XYZ")
    s = read_beat(make_take(tmp_path, "6_x_0_6_6", local, fps=fps, order="ZYX"))
    assert s.num_frames == 60 and abs(s.duration - seconds) < 1e-9 and len(s.audio) == 32000
    got = quat_to_axis_angle(s.rotations[:, JOINT_INDEX["left_elbow"]].astype(np.float64))[:, 1]
    want = np.radians(60.0) * np.sin(2 * np.pi * 0.5 * np.arange(60) / 30.0)
    assert np.abs(got - want)[1:-1].max() < np.radians(0.5)  # the first and last frames see the filter's edge
    assert np.abs(got - want).max() < np.radians(1.5)


def test_wrong_frame_time_header_is_detected_from_the_audio(tmp_path: Path) -> None:
    n = 120  # really 60 fps (2 s), the header claims 120 fps (1 s); the audio is 2 s
    local = identity_local(n)
    with pytest.warns(UserWarning, match="60 fps"):
        s = read_zeggs(make_take(tmp_path, "001_Neutral_0_x_1_0", local, fps=60.0, header_fps=120.0))
    assert s.num_frames == 60 and "frame_time_fixed" in s.meta
    assert resolve_frame_time(120, 1 / 60, 2.0) == (1 / 60, "")  # a right header stays
    assert resolve_frame_time(120, 1 / 120, 5.0) == (1 / 120, "")  # nothing standard fits: keep the claim


def test_length_mismatch_keeps_the_overlap_and_clips_words(tmp_path: Path) -> None:
    words = [("hello", 0.1, 0.5), ("there", 0.6, 1.2), ("friend", 1.3, 1.9)]
    # Motion 1.5 s, audio 1.6 s (within 10 %: the header is believed); words run to 1.9 s.
    s = read_beat(make_take(tmp_path, "7_y_0_7_7", identity_local(45), audio_seconds=1.6, words=words))
    assert s.num_frames == 45 and len(s.audio) == 24000
    assert [w.text for w in s.words] == ["hello", "there", "friend"] and s.words[-1].end == pytest.approx(1.5)
    # Audio much shorter than the motion (no standard rate explains it): the motion is cut, "friend" dropped.
    s = read_beat(make_take(tmp_path, "8_z_0_8_8", identity_local(45), audio_seconds=1.25, words=words))
    assert s.num_frames == 37 and len(s.audio) == round(37 / 30 * SR)
    assert [w.text for w in s.words] == ["hello", "there"]


def test_zeggs_style_mirror_flag_and_split_grouping(tmp_path: Path) -> None:
    assert zeggs_style("015_Happy_4_x_1_0") == "Happy" and zeggs_style("weird") == ""
    a = read_zeggs(make_take(tmp_path, "015_Happy_4_x_1_0", identity_local(6), order="ZYX"))
    b = read_zeggs(make_take(tmp_path, "015_Happy_4_mirror_x_1_0", identity_local(6), order="ZYX"))
    assert a.meta["style"] == b.meta["style"] == "Happy"
    assert a.meta["mirrored"] is False and b.meta["mirrored"] is True
    assert a.meta["split"] == b.meta["split"]


def test_beat_emotion_from_csv_or_name(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("start,end,emotion\n0,1,happiness\n1,2,happiness\n2,3,neutral\n")
    assert read_emotion_csv(tmp_path / "e.csv") == "happiness"
    (tmp_path / "c.csv").write_text("2\n")
    assert read_emotion_csv(tmp_path / "c.csv") == "anger"
    assert beat_emotion_from_name("1_wayne_0_1_1") == "neutral"
    assert beat_emotion_from_name("1_wayne_0_70_70") == "happiness"
    n = 6
    path = make_take(tmp_path, "9_carla_0_100_100", identity_local(n))
    (tmp_path / "9_carla_0_100_100.csv").write_text("sad\n")
    assert read_beat(path).emotion == "sadness"


# --- BEAT2 -------------------------------------------------------------------------------------------------


def write_beat2(root: Path, stem: str, poses: np.ndarray, trans: np.ndarray, fps: float, seconds: float) -> Path:
    (root / "smplxflame_30").mkdir(parents=True, exist_ok=True)
    (root / "wave16k").mkdir(exist_ok=True)
    (root / "textgrid").mkdir(exist_ok=True)
    path = root / "smplxflame_30" / f"{stem}.npz"
    np.savez(path, poses=poses, trans=trans, betas=np.zeros(300), expressions=np.zeros((len(poses), 100)),
             mocap_frame_rate=np.array(fps))
    write_wav(root / "wave16k" / f"{stem}.wav", seconds)
    write_textgrid(root / "textgrid" / f"{stem}.TextGrid", [("so", 0.2, 0.4), ("yes", 0.5, 0.9)], seconds)
    return path


def test_beat2_npz_round_trips_known_rotations(tmp_path: Path) -> None:
    n = 30
    rng = np.random.default_rng(0)
    aa = rng.normal(0.0, 0.5, (n, 55, 3))
    trans = np.stack([np.linspace(0, 0.2, n), np.full(n, -0.3), np.zeros(n)], -1)
    s = read_beat2(write_beat2(tmp_path, "2_scott_0_1_1", aa.reshape(n, 165), trans, 30.0, 1.0))
    kept = [j for j in range(55) if j not in (22, 23, 24)]  # no jaw, no eyes
    want = axis_angle_to_quat(aa[:, kept])
    dots = np.abs(np.sum(want * s.rotations, -1))
    assert s.rotations.shape == (n, 52, 4) and dots.min() > 1 - 1e-6
    assert np.allclose(s.root[:, 0], trans[:, 0], atol=1e-6) and np.allclose(s.root[:, 1], REST_PELVIS_HEIGHT)
    assert s.speaker == "scott" and [w.text for w in s.words] == ["so", "yes"] and len(s.audio) == SR
    fixed = read_beat2(tmp_path / "smplxflame_30" / "2_scott_0_1_1.npz", pelvis_offset=(0.0, 1.2, 0.0))
    assert np.allclose(fixed.root[:, 1], 0.9, atol=1e-6)


def test_beat2_other_frame_rate_is_resampled_and_official_split_used(tmp_path: Path) -> None:
    n = 120  # 2 s at 60 fps
    aa = np.zeros((n, 55, 3))
    aa[:, 18, 1] = np.linspace(0, 1.0, n)  # the left elbow turns steadily about Y
    write_beat2(tmp_path, "3_solomon_0_2_2", aa.reshape(n, 165), np.zeros((n, 3)), 60.0, 2.0)
    (tmp_path / "train_test_split.csv").write_text("id,type\n3_solomon_0_2_2,test\n")
    samples = list(iter_beat2(tmp_path, "test"))
    assert len(samples) == 1 and list(iter_beat2(tmp_path, "train")) == []
    s = samples[0]
    assert s.num_frames == 60 and s.meta["source_fps"] == 60.0
    angle = quat_to_axis_angle(s.rotations[:, JOINT_INDEX["left_elbow"]].astype(np.float64))[:, 1]
    assert np.allclose(angle[1:-1], np.linspace(0, 1.0, n)[2:-2:2], atol=2e-3)


# --- the procedural corpus ----------------------------------------------------------------------------------


def test_procedural_corpus_clips_become_samples(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    (tmp_path / "test").mkdir()
    rot = np.zeros((15, 52, 4), np.float32)
    rot[..., 0] = 1
    audio = (np.sin(np.arange(16000) / 10.0) * 10000).astype(np.int16)
    tensors = {
        "rotations": rot, "root": np.zeros((15, 3), np.float32), "audio": audio,
        "frame_offsets": np.array([0, 10, 15], np.int64), "sample_offsets": np.array([0, 10000, 16000], np.int64),
        "style_ids": np.array([3, 4], np.int32), "part_style_ids": np.arange(14, dtype=np.int32).reshape(2, 7),
    }
    save_file(tensors, str(tmp_path / "test" / "shard_00000.safetensors"))
    meta = [{"index": i, "split": "test", "voice": {"name": "en-us"}, "style_id": 3 + i, "text": "hi there",
             "words": [["hi", 0.1, 0.2], ["there", 0.25, 0.3]]} for i in range(2)]
    (tmp_path / "test" / "shard_00000.json").write_text(json.dumps(meta))
    (tmp_path / "manifest.json").write_text(json.dumps({"shards": [{"path": "test/shard_00000.safetensors"}]}))
    samples = list(iter_procedural(tmp_path, "test"))
    assert [s.num_frames for s in samples] == [10, 5] and [len(s.audio) for s in samples] == [10000, 6000]
    assert samples[1].style_id == 4 and samples[1].part_style_ids == tuple(range(7, 14))
    assert samples[0].audio.dtype == np.float32 and np.abs(samples[0].audio).max() <= 1.0
    assert samples[0].words[1].text == "there" and samples[0].speaker == "en-us"
    assert list(iter_procedural(tmp_path, "train")) == []


# --- the format ---------------------------------------------------------------------------------------------


def test_split_of_is_stable_and_roughly_90_5_5() -> None:
    assert split_of("1_wayne_0_1_1") == split_of("1_wayne_0_1_1")
    counts = dict.fromkeys(SPLITS, 0)
    for i in range(4000):
        counts[split_of(f"take_{i}")] += 1
    assert 0.87 < counts["train"] / 4000 < 0.93 and counts["val"] > 120 and counts["test"] > 120


def test_sample_validates_shapes() -> None:
    with pytest.raises(ValueError, match="rotations"):
        Sample(np.zeros((3, 51, 4)), np.zeros((3, 3)), np.zeros(10), [], "x")
    with pytest.raises(ValueError, match="root"):
        Sample(np.zeros((3, 52, 4)), np.zeros((2, 3)), np.zeros(10), [], "x")
