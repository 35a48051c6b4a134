"""Procedural test rigs with each preset's real bone names and realistic rest poses (dev only, no bpy).

A RigSpec lists bones (name, head, tail, parent, roll) in Blender armature space (metres, Z up, the
character facing -Y, its left at +X), plus the object transform and the canonical joint -> bone table a
correct mapping gives. tools/testrigs.py builds them in Blender; ``to_rig_rest`` turns them into a
``RigRest`` for tests without Blender.

Rigs: SMPL-X (root, jaw, eyes), SMPL-H (m_avg_ FBX names), Mixamo (finger and head end bones), VRoid /
VRM 0.x (J_Bip_*, J_Sec_* hair, bust and skirt helpers, J_Adj_* eyes), VRM 1.0 humanoid names, UE4 and
UE5 mannequins (root, IK bones, twist bones as siblings, UE5's five spine and two neck bones and finger
metacarpals), Auto-Rig Pro (c_ controls with two spine bones, plus deform bones held by Copy Transforms
constraints, IK controls with an ik_fk_switch property), Rigify DEF bones as a game export keeps them (upper
arm, forearm, thigh and shin in two segments, neck in two, palms), a BEAT-layout skeleton as Blender's BVH
importer makes it, and rigs with unknown bone names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gestura.inference.rotations import quat_from_axis_angle, quat_rotate
from gestura.inference.skeleton import (
    CANONICAL_TO_BLENDER,
    JOINT_INDEX,
    JOINT_NAMES,
    NUM_JOINTS,
    REST_BONE_VECTORS,
    forward_kinematics,
)
from gestura.retarget.bonemaps import PRESETS
from gestura.retarget.solve import RigRest

SIDES = (("left", "L", "Left", "l"), ("right", "R", "Right", "r"))
FINGERS = ("index", "middle", "ring", "pinky", "thumb")


@dataclass
class BoneSpec:
    name: str
    head: np.ndarray
    tail: np.ndarray
    parent: str | None
    deform: bool = True
    copy_from: str | None = None  # a Copy Transforms constraint on this bone (target bone)
    props: dict[str, float] = field(default_factory=dict)  # custom properties on the pose bone


@dataclass
class RigSpec:
    name: str
    preset: str  # the preset detection should find ("" for unknown names)
    bones: list[BoneSpec]
    expected: dict[str, str]  # canonical joint -> bone, what a correct mapping gives
    a_pose: float = 0.0
    # Object transform (Blender's rotation_euler XYZ and scale); data_to_world undoes the data transform.
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    data_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))

    def bone(self, name: str) -> BoneSpec:
        return next(b for b in self.bones if b.name == name)

    @property
    def world(self) -> np.ndarray:
        """The object's matrix_world."""
        rx, ry, rz = self.rotation
        rot = _rot("Z", rz) @ _rot("Y", ry) @ _rot("X", rx)
        m = np.eye(4)
        m[:3, :3] = rot * self.scale
        return m

    @property
    def facing(self) -> np.ndarray:
        """Canonical axes (left, up, forward) -> world directions: where the character's canonical
        directions point in the world (the expected frame of every test)."""
        # The spec is built facing -Y in Blender axes, then moved into its data space (FBX: Y up, cm); the
        # object transform takes data to world.
        w = self.world[:3, :3] @ np.linalg.inv(self.data_to_world)[:3, :3]
        w = w / np.cbrt(np.linalg.det(w))
        return w @ CANONICAL_TO_BLENDER


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "X":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)
    if axis == "Y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float)


# --------------------------------------------------------------------------------------------------------
# Canonical geometry


def canonical_points(
    a_pose_deg: float = 0.0, elbow_bend_deg: float = 0.0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Heads and tails of the canonical bones in Blender axes (metres), with the arms lowered by
    a_pose_deg about the shoulder joints and the elbows bent forward by elbow_bend_deg."""
    q = np.zeros((NUM_JOINTS, 4))
    q[:, 0] = 1.0
    fwd, up = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    a = math.radians(a_pose_deg)
    e = math.radians(elbow_bend_deg)
    q[JOINT_INDEX["left_shoulder"]] = quat_from_axis_angle(fwd, -a)
    q[JOINT_INDEX["right_shoulder"]] = quat_from_axis_angle(fwd, a)
    q[JOINT_INDEX["left_elbow"]] = quat_from_axis_angle(up, -e)
    q[JOINT_INDEX["right_elbow"]] = quat_from_axis_angle(up, e)
    glob, pos = forward_kinematics(q)
    tails = pos + quat_rotate(glob, REST_BONE_VECTORS)
    P = {n: pos[i] @ CANONICAL_TO_BLENDER.T for i, n in enumerate(JOINT_NAMES)}
    T = {n: tails[i] @ CANONICAL_TO_BLENDER.T for i, n in enumerate(JOINT_NAMES)}
    return P, T


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + (b - a) * t


class _Builder:
    def __init__(self, name: str, preset: str, a_pose: float, elbow_bend: float = 0.0):
        self.P, self.T = canonical_points(a_pose, elbow_bend)
        self.spec = RigSpec(name, preset, [], {}, a_pose)

    def add(self, name: str, head, tail, parent: str | None, joint: str | None = None, **kw) -> str:
        head, tail = np.asarray(head, float), np.asarray(tail, float)
        if np.linalg.norm(tail - head) < 1e-4:
            tail = head + np.array([0.0, 0.0, 0.02])
        self.spec.bones.append(BoneSpec(name, head, tail, parent, **kw))
        if joint:
            self.spec.expected[joint] = name
        return name

    def joint(self, name: str, joint: str, parent: str | None, **kw) -> str:
        return self.add(name, self.P[joint], self.T[joint], parent, joint, **kw)

    def end(self, name: str, parent: str, length: float = 0.5) -> str:
        """A leaf end bone continuing the parent (FBX/BVH end bones)."""
        p = self.spec.bone(parent)
        d = p.tail - p.head
        return self.add(name, p.tail, p.tail + d * length, parent)


def _fingers(b: _Builder, side: str, hand: str, name: Callable[[str, int], str], *,
             metacarpal: Callable[[str], str] | None = None, thumb_meta: bool = False,
             ends: Callable[[str], str] | None = None) -> None:
    """Finger chains under `hand`: name(finger, seg) for the three canonical segments, optional metacarpal
    bones (wrist -> knuckle) and tip end bones."""
    wrist = b.P[f"{side}_wrist"]
    for finger in FINGERS:
        parent = hand
        first = b.P[f"{side}_{finger}1"]
        if metacarpal and (finger != "thumb" or thumb_meta):
            parent = b.add(metacarpal(finger), _lerp(wrist, first, 0.15), first, hand)
        for seg in (1, 2, 3):
            parent = b.joint(name(finger, seg), f"{side}_{finger}{seg}", parent)
        if ends:
            b.end(ends(finger), parent)


# --------------------------------------------------------------------------------------------------------
# Presets


def smplx(a_pose: float = 0.0) -> RigSpec:
    b = _Builder("SMPLX-neutral", "smplx", a_pose)
    b.add("root", (0, 0, 0), (0, 0, 0.1), None)
    names = PRESETS["smplx"].joints
    parent_of = {"pelvis": "root"}
    from gestura.inference.skeleton import PARENTS

    for j, joint in enumerate(JOINT_NAMES):
        p = PARENTS[j]
        b.joint(names[joint], joint, parent_of.get(joint, JOINT_NAMES[p] if p >= 0 else None))
    head = b.P["head"]
    b.add("jaw", head + [0, -0.02, -0.02], head + [0, -0.08, -0.06], "head")
    for side, x in (("left", 0.03), ("right", -0.03)):
        b.add(f"{side}_eye_smplhf", head + [x, -0.08, 0.06], head + [x, -0.1, 0.06], "head")
    return b.spec


def smplh(a_pose: float = 0.0) -> RigSpec:
    b = _Builder("SMPLH-male", "smplh", a_pose)
    names = {j: "m_avg_" + n for j, n in PRESETS["smplh"].joints.items()}
    from gestura.inference.skeleton import PARENTS

    for j, joint in enumerate(JOINT_NAMES):
        p = PARENTS[j]
        b.joint(names[joint], joint, names[JOINT_NAMES[p]] if p >= 0 else None)
    return b.spec


def mixamo(a_pose: float = 0.0, prefix: str = "mixamorig:") -> RigSpec:
    b = _Builder("Armature", "mixamo" if prefix else "mixamo_no_prefix", a_pose)
    n = {j: prefix + v[len("mixamorig:"):] for j, v in PRESETS["mixamo"].joints.items()}
    b.joint(n["pelvis"], "pelvis", None)
    b.joint(n["spine1"], "spine1", n["pelvis"])
    b.joint(n["spine2"], "spine2", n["spine1"])
    b.joint(n["spine3"], "spine3", n["spine2"])
    b.joint(n["neck"], "neck", n["spine3"])
    b.joint(n["head"], "head", n["neck"])
    b.end(prefix + "HeadTop_End", n["head"], 0.3)
    for side, _s, cap, _l in SIDES:
        b.joint(n[f"{side}_collar"], f"{side}_collar", n["spine3"])
        b.joint(n[f"{side}_shoulder"], f"{side}_shoulder", n[f"{side}_collar"])
        b.joint(n[f"{side}_elbow"], f"{side}_elbow", n[f"{side}_shoulder"])
        b.joint(n[f"{side}_wrist"], f"{side}_wrist", n[f"{side}_elbow"])
        _fingers(b, side, n[f"{side}_wrist"], lambda f, s, cap=cap: f"{prefix}{cap}Hand{f.capitalize()}{s}",
                 ends=lambda f, cap=cap: f"{prefix}{cap}Hand{f.capitalize()}4")
        b.joint(n[f"{side}_hip"], f"{side}_hip", n["pelvis"])
        b.joint(n[f"{side}_knee"], f"{side}_knee", n[f"{side}_hip"])
        b.joint(n[f"{side}_ankle"], f"{side}_ankle", n[f"{side}_knee"])
        b.joint(n[f"{side}_foot"], f"{side}_foot", n[f"{side}_ankle"])
        b.end(f"{prefix}{cap}Toe_End", n[f"{side}_foot"])
    return b.spec


def vroid(a_pose: float = 0.0) -> RigSpec:
    """A VRoid Studio model (VRM 0.x): J_Bip_* humanoid bones, J_Sec_* hair, bust and skirt springs,
    J_Adj_* face helpers, a Root bone at the feet."""
    b = _Builder("VRoid", "vroid", a_pose)
    n = PRESETS["vroid"].joints
    b.add("Root", (0, 0, 0), (0, 0, 0.1), None)
    b.joint(n["pelvis"], "pelvis", "Root")
    b.joint(n["spine1"], "spine1", n["pelvis"])
    b.joint(n["spine2"], "spine2", n["spine1"])
    b.joint(n["spine3"], "spine3", n["spine2"])
    b.joint(n["neck"], "neck", n["spine3"])
    b.joint(n["head"], "head", n["neck"])
    head = b.P["head"]
    hair = b.add("J_Sec_Hair1_01", head + [0, 0.05, 0.15], head + [0, 0.12, 0.08], n["head"])
    b.add("J_Sec_Hair2_01", head + [0, 0.12, 0.08], head + [0, 0.15, -0.05], hair)
    for side, s, _cap, _l in SIDES:
        x = 0.03 if side == "left" else -0.03
        b.add(f"J_Adj_{s}_FaceEye", head + [x, -0.08, 0.06], head + [x, -0.1, 0.06], n["head"])
        chest = b.P["spine3"]
        bust = b.add(f"J_Sec_{s}_Bust1", chest + [x * 3, -0.05, 0.05], chest + [x * 3, -0.1, 0.03], n["spine3"])
        b.add(f"J_Sec_{s}_Bust2", chest + [x * 3, -0.1, 0.03], chest + [x * 3, -0.13, 0.02], bust)
        hip = b.P[f"{side}_hip"]
        skirt = b.add(f"J_Sec_{s}_SkirtFront0_01", hip + [0, -0.1, 0.02], hip + [0, -0.12, -0.15], n["pelvis"])
        b.add(f"J_Sec_{s}_SkirtFront0_02", hip + [0, -0.12, -0.15], hip + [0, -0.13, -0.3], skirt)
        b.joint(n[f"{side}_collar"], f"{side}_collar", n["spine3"])
        b.joint(n[f"{side}_shoulder"], f"{side}_shoulder", n[f"{side}_collar"])
        b.joint(n[f"{side}_elbow"], f"{side}_elbow", n[f"{side}_shoulder"])
        b.joint(n[f"{side}_wrist"], f"{side}_wrist", n[f"{side}_elbow"])
        _fingers(b, side, n[f"{side}_wrist"], lambda f, k, side=side: n[f"{side}_{f}{k}"])
        b.joint(n[f"{side}_hip"], f"{side}_hip", n["pelvis"])
        b.joint(n[f"{side}_knee"], f"{side}_knee", n[f"{side}_hip"])
        b.joint(n[f"{side}_ankle"], f"{side}_ankle", n[f"{side}_knee"])
        b.joint(n[f"{side}_foot"], f"{side}_foot", n[f"{side}_ankle"])
    return b.spec


def vrm1(a_pose: float = 0.0) -> RigSpec:
    """A VRM 1.0 model whose bones carry the humanoid names (hips, leftUpperArm, leftThumbMetacarpal, ...)."""
    b = _Builder("VRM1", "vrm1", a_pose)
    n = PRESETS["vrm1"].joints
    b.joint(n["pelvis"], "pelvis", None)
    for a, p in (("spine1", "pelvis"), ("spine2", "spine1"), ("spine3", "spine2"), ("neck", "spine3"),
                 ("head", "neck")):
        b.joint(n[a], a, n[p])
    head = b.P["head"]
    for side, _s, _cap, _l in SIDES:
        x = 0.03 if side == "left" else -0.03
        b.add(f"{side}Eye", head + [x, -0.08, 0.06], head + [x, -0.1, 0.06], n["head"])
        b.joint(n[f"{side}_collar"], f"{side}_collar", n["spine3"])
        b.joint(n[f"{side}_shoulder"], f"{side}_shoulder", n[f"{side}_collar"])
        b.joint(n[f"{side}_elbow"], f"{side}_elbow", n[f"{side}_shoulder"])
        b.joint(n[f"{side}_wrist"], f"{side}_wrist", n[f"{side}_elbow"])
        _fingers(b, side, n[f"{side}_wrist"], lambda f, k, side=side: n[f"{side}_{f}{k}"])
        b.joint(n[f"{side}_hip"], f"{side}_hip", n["pelvis"])
        b.joint(n[f"{side}_knee"], f"{side}_knee", n[f"{side}_hip"])
        b.joint(n[f"{side}_ankle"], f"{side}_ankle", n[f"{side}_knee"])
        b.joint(n[f"{side}_foot"], f"{side}_foot", n[f"{side}_ankle"])
    return b.spec


def unreal(version: int = 5, a_pose: float = 0.0) -> RigSpec:
    """UE4 mannequin or UE5 Manny: root at the feet with IK bones, twist bones as siblings of the limb
    bones, slightly bent elbows; UE5 adds spine_04/05, neck_02 and finger metacarpals."""
    b = _Builder("SK_Mannequin" if version == 4 else "SKM_Manny", f"ue{version}", a_pose, elbow_bend=12.0)
    P = b.P
    b.add("root", (0, 0, 0), (0, -0.1, 0), None)
    b.joint("pelvis", "pelvis", "root")
    if version == 4:
        b.joint("spine_01", "spine1", "pelvis")
        b.joint("spine_02", "spine2", "spine_01")
        b.joint("spine_03", "spine3", "spine_02")
        chest, neck_parent = "spine_03", "spine_03"
        b.joint("neck_01", "neck", neck_parent)
        b.joint("head", "head", "neck_01")
    else:
        s1, s2, s3, nk, hd = P["spine1"], P["spine2"], P["spine3"], P["neck"], P["head"]
        b.add("spine_01", s1, _lerp(s1, s2, 0.5), "pelvis", "spine1")
        b.add("spine_02", _lerp(s1, s2, 0.5), s2, "spine_01")
        b.add("spine_03", s2, _lerp(s2, s3, 0.5), "spine_02", "spine2")
        b.add("spine_04", _lerp(s2, s3, 0.5), s3, "spine_03")
        b.add("spine_05", s3, nk, "spine_04", "spine3")
        b.add("neck_01", nk, _lerp(nk, hd, 0.5), "spine_05", "neck")
        b.add("neck_02", _lerp(nk, hd, 0.5), hd, "neck_01")
        b.joint("head", "head", "neck_02")
        chest = "spine_05"
    b.add("ik_foot_root", (0, 0, 0), (0, 0, 0.1), "root")
    b.add("ik_hand_root", (0, 0, 0), (0, 0, 0.1), "root")
    b.add("ik_hand_gun", P["right_wrist"], P["right_wrist"] + [0, 0, 0.1], "ik_hand_root")
    for side, _s, _cap, low in SIDES:
        b.joint(f"clavicle_{low}", f"{side}_collar", chest)
        b.joint(f"upperarm_{low}", f"{side}_shoulder", f"clavicle_{low}")
        sh, el, wr = P[f"{side}_shoulder"], P[f"{side}_elbow"], P[f"{side}_wrist"]
        twists = (0.5,) if version == 4 else (0.33, 0.66)
        for k, t in enumerate(twists, start=1):
            b.add(f"upperarm_twist_0{k}_{low}", _lerp(sh, el, t), _lerp(sh, el, t + 0.2), f"upperarm_{low}")
        b.joint(f"lowerarm_{low}", f"{side}_elbow", f"upperarm_{low}")
        for k, t in enumerate(twists, start=1):
            b.add(f"lowerarm_twist_0{k}_{low}", _lerp(el, wr, t), _lerp(el, wr, t + 0.2), f"lowerarm_{low}")
        b.joint(f"hand_{low}", f"{side}_wrist", f"lowerarm_{low}")
        meta = (lambda f, low=low: f"{f}_metacarpal_{low}") if version == 5 else None
        _fingers(b, side, f"hand_{low}", lambda f, k, low=low: f"{f}_0{k}_{low}", metacarpal=meta)
        b.joint(f"thigh_{low}", f"{side}_hip", "pelvis")
        hp, kn = P[f"{side}_hip"], P[f"{side}_knee"]
        b.add(f"thigh_twist_01_{low}", _lerp(hp, kn, 0.5), _lerp(hp, kn, 0.7), f"thigh_{low}")
        b.joint(f"calf_{low}", f"{side}_knee", f"thigh_{low}")
        b.add(f"calf_twist_01_{low}", _lerp(kn, P[f"{side}_ankle"], 0.5), _lerp(kn, P[f"{side}_ankle"], 0.7),
              f"calf_{low}")
        b.joint(f"foot_{low}", f"{side}_ankle", f"calf_{low}")
        b.joint(f"ball_{low}", f"{side}_foot", f"foot_{low}")
        b.add(f"ik_foot_{low}", P[f"{side}_ankle"], P[f"{side}_ankle"] + [0, -0.1, 0], "ik_foot_root")
        b.add(f"ik_hand_{low}", wr, wr + [0, 0, 0.1], "ik_hand_gun")
    return b.spec


def auto_rig_pro(a_pose: float = 0.0) -> RigSpec:
    """Auto-Rig Pro's human rig with two spine bones: FK controls (c_*), the IK controls that hold the
    ik_fk_switch property (0 = IK, as a new rig starts), and deform bones that copy the controls."""
    b = _Builder("rig", "arp", a_pose)
    P = b.P
    b.add("c_traj", (0, 0, 0), (0, 0.3, 0), None)
    # Controls point where ARP's do: the root master backwards, the hips bone down.
    b.add("c_root_master.x", P["pelvis"], P["pelvis"] + [0, 0.2, 0], "c_traj", "pelvis")
    b.add("c_root.x", P["spine1"], P["pelvis"], "c_root_master.x")
    b.add("c_spine_01.x", P["spine1"], P["spine2"], "c_root_master.x", "spine1")
    b.add("c_spine_02.x", P["spine2"], P["neck"], "c_spine_01.x", "spine2")
    b.joint("c_neck.x", "neck", "c_spine_02.x")
    b.joint("c_head.x", "head", "c_neck.x")
    b.add("root.x", P["spine1"], P["pelvis"], None, copy_from="c_root.x")
    b.add("spine_01.x", P["spine1"], P["spine2"], "root.x", copy_from="c_spine_01.x")
    b.add("spine_02.x", P["spine2"], P["neck"], "spine_01.x", copy_from="c_spine_02.x")
    b.add("neck.x", P["neck"], P["head"], "spine_02.x", copy_from="c_neck.x")
    b.add("head.x", P["head"], b.T["head"], "neck.x", copy_from="c_head.x")
    for side, _s, _cap, low in SIDES:
        sfx = "." + low
        b.joint("c_shoulder" + sfx, f"{side}_collar", "c_spine_02.x")
        b.joint("c_arm_fk" + sfx, f"{side}_shoulder", "c_shoulder" + sfx)
        b.joint("c_forearm_fk" + sfx, f"{side}_elbow", "c_arm_fk" + sfx)
        b.joint("c_hand_fk" + sfx, f"{side}_wrist", "c_forearm_fk" + sfx)
        _fingers(b, side, "c_hand_fk" + sfx, lambda f, k, sfx=sfx: f"c_{f}{k}{sfx}",
                 metacarpal=lambda f, sfx=sfx: f"c_{f}1_base{sfx}")
        wr = P[f"{side}_wrist"]
        b.add("c_hand_ik" + sfx, wr, b.T[f"{side}_wrist"], "c_traj", props={"ik_fk_switch": 0.0})
        b.add("c_thigh_fk" + sfx, P[f"{side}_hip"], P[f"{side}_knee"], "c_root.x", f"{side}_hip")
        b.joint("c_leg_fk" + sfx, f"{side}_knee", "c_thigh_fk" + sfx)
        b.joint("c_foot_fk" + sfx, f"{side}_ankle", "c_leg_fk" + sfx)
        b.joint("c_toes_fk" + sfx, f"{side}_foot", "c_foot_fk" + sfx)
        an = P[f"{side}_ankle"]
        b.add("c_foot_ik" + sfx, an, an + [0, -0.15, 0], "c_traj", props={"ik_fk_switch": 0.0})
        # Deform bones.
        for bone, joint, parent, control in (
            ("shoulder", f"{side}_collar", "spine_02.x", "c_shoulder"),
            ("arm_stretch", f"{side}_shoulder", "shoulder", "c_arm_fk"),
            ("forearm_stretch", f"{side}_elbow", "arm_stretch", "c_forearm_fk"),
            ("hand", f"{side}_wrist", "forearm_stretch", "c_hand_fk"),
            ("thigh_stretch", f"{side}_hip", "root.x", "c_thigh_fk"),
            ("leg_stretch", f"{side}_knee", "thigh_stretch", "c_leg_fk"),
            ("foot", f"{side}_ankle", "leg_stretch", "c_foot_fk"),
            ("toes_01", f"{side}_foot", "foot", "c_toes_fk"),
        ):
            b.add(bone + sfx, P[joint], b.T[joint], parent + sfx if "." not in parent else parent,
                  copy_from=control + sfx)
        sh, el = P[f"{side}_shoulder"], P[f"{side}_elbow"]
        b.add("arm_twist" + sfx, sh, _lerp(sh, el, 0.5), "shoulder" + sfx, copy_from="c_arm_fk" + sfx)
    return b.spec


def rigify_def(a_pose: float = 0.0) -> RigSpec:
    """Rigify's deform bones as a game export keeps them (DEF- names, re-parented into one hierarchy):
    the limbs in two B-bone segments, the neck in two, palm bones under the hand, pelvis and breast helpers."""
    b = _Builder("rig_export", "rigify_def", a_pose)
    P = b.P
    b.add("DEF-spine", P["pelvis"], P["spine1"], None, "pelvis")
    b.add("DEF-spine.001", P["spine1"], P["spine2"], "DEF-spine", "spine1")
    b.add("DEF-spine.002", P["spine2"], P["spine3"], "DEF-spine.001", "spine2")
    b.add("DEF-spine.003", P["spine3"], P["neck"], "DEF-spine.002", "spine3")
    mid = _lerp(P["neck"], P["head"], 0.5)
    b.add("DEF-spine.004", P["neck"], mid, "DEF-spine.003", "neck")
    b.add("DEF-spine.005", mid, P["head"], "DEF-spine.004")
    b.joint("DEF-spine.006", "head", "DEF-spine.005")
    for side, s, _cap, _low in SIDES:
        x = 1.0 if side == "left" else -1.0
        b.add(f"DEF-pelvis.{s}", P["pelvis"], P["pelvis"] + [0.1 * x, -0.05, -0.05], "DEF-spine")
        b.add(f"DEF-breast.{s}", P["spine3"] + [0.1 * x, -0.05, 0], P["spine3"] + [0.1 * x, -0.15, 0],
              "DEF-spine.003")
        b.joint(f"DEF-shoulder.{s}", f"{side}_collar", "DEF-spine.003")
        for first, a, z, parent in (
            ("upper_arm", f"{side}_shoulder", f"{side}_elbow", f"DEF-shoulder.{s}"),
            ("forearm", f"{side}_elbow", f"{side}_wrist", f"DEF-upper_arm.{s}.001"),
            ("thigh", f"{side}_hip", f"{side}_knee", "DEF-spine"),
            ("shin", f"{side}_knee", f"{side}_ankle", f"DEF-thigh.{s}.001"),
        ):
            m = _lerp(P[a], P[z], 0.5)
            b.add(f"DEF-{first}.{s}", P[a], m, parent, a)
            b.add(f"DEF-{first}.{s}.001", m, P[z], f"DEF-{first}.{s}")
        b.joint(f"DEF-hand.{s}", f"{side}_wrist", f"DEF-forearm.{s}.001")
        wrist = P[f"{side}_wrist"]
        for k, finger in enumerate(("index", "middle", "ring", "pinky"), start=1):
            first = P[f"{side}_{finger}1"]
            palm = b.add(f"DEF-palm.0{k}.{s}", _lerp(wrist, first, 0.3), first, f"DEF-hand.{s}")
            parent = palm
            for seg in (1, 2, 3):
                parent = b.joint(f"DEF-f_{finger}.0{seg}.{s}", f"{side}_{finger}{seg}", parent)
        parent = f"DEF-palm.01.{s}"
        for seg in (1, 2, 3):
            parent = b.joint(f"DEF-thumb.0{seg}.{s}", f"{side}_thumb{seg}", parent)
        b.joint(f"DEF-foot.{s}", f"{side}_ankle", f"DEF-shin.{s}.001")
        b.joint(f"DEF-toe.{s}", f"{side}_foot", f"DEF-foot.{s}")
    return b.spec


# BEAT / ZEGGS layout: 75 joints (Hips, Spine..Spine3, Neck, Neck1, Head, HeadEnd, per arm Shoulder, Arm,
# ForeArm, Hand, metacarpal joints for index, ring and pinky, five fingers 1-4, per leg UpLeg, Leg, Foot,
# ForeFoot, ToeBase, ToeBaseEnd). Joint -> (parent, position maker).
def beat_joints(a_pose: float = 0.0) -> list[tuple[str, str | None, np.ndarray]]:
    """(name, parent, position in Blender axes, metres) of a BEAT-layout skeleton; leaves get an end site."""
    P, T = canonical_points(a_pose)
    out: list[tuple[str, str | None, np.ndarray]] = []

    def add(name: str, parent: str | None, pos) -> None:
        out.append((name, parent, np.asarray(pos, float)))

    add("Hips", None, P["pelvis"])
    add("Spine", "Hips", P["spine1"])
    add("Spine1", "Spine", P["spine2"])
    add("Spine2", "Spine1", _lerp(P["spine2"], P["spine3"], 0.5))
    add("Spine3", "Spine2", P["spine3"])
    add("Neck", "Spine3", P["neck"])
    add("Neck1", "Neck", _lerp(P["neck"], P["head"], 0.5))
    add("Head", "Neck1", P["head"])
    add("HeadEnd", "Head", T["head"])
    for side, _s, cap, _l in SIDES:
        add(f"{cap}Shoulder", "Spine3", P[f"{side}_collar"])
        add(f"{cap}Arm", f"{cap}Shoulder", P[f"{side}_shoulder"])
        add(f"{cap}ForeArm", f"{cap}Arm", P[f"{side}_elbow"])
        add(f"{cap}Hand", f"{cap}ForeArm", P[f"{side}_wrist"])
        for finger in ("middle", "ring", "pinky", "index", "thumb"):
            f = finger.capitalize()
            parent = f"{cap}Hand"
            if finger in ("index", "ring", "pinky"):
                add(f"{cap}Hand{f}", parent, _lerp(P[f"{side}_wrist"], P[f"{side}_{finger}1"], 0.2))
                parent = f"{cap}Hand{f}"
            for seg in (1, 2, 3):
                add(f"{cap}Hand{f}{seg}", parent, P[f"{side}_{finger}{seg}"])
                parent = f"{cap}Hand{f}{seg}"
            add(f"{cap}Hand{f}4", parent, T[f"{side}_{finger}3"])
    for side, _s, cap, _l in SIDES:
        add(f"{cap}UpLeg", "Hips", P[f"{side}_hip"])
        add(f"{cap}Leg", f"{cap}UpLeg", P[f"{side}_knee"])
        add(f"{cap}Foot", f"{cap}Leg", P[f"{side}_ankle"])
        add(f"{cap}ForeFoot", f"{cap}Foot", _lerp(P[f"{side}_ankle"], P[f"{side}_foot"], 0.5))
        add(f"{cap}ToeBase", f"{cap}ForeFoot", P[f"{side}_foot"])
        add(f"{cap}ToeBaseEnd", f"{cap}ToeBase", T[f"{side}_foot"])
    return out


BEAT_EXPECTED = dict(PRESETS["beat"].joints)


def beat_bvh_text(a_pose: float = 0.0, frames: int = 2) -> str:
    """A BVH file of the BEAT-layout skeleton (centimetres, Y up, facing +Z, channels Zrotation Xrotation
    Yrotation like BEAT and ZEGGS), in its rest pose."""
    joints = beat_joints(a_pose)
    to_bvh = CANONICAL_TO_BLENDER.T * 100.0  # Blender axes (metres) -> canonical/BVH axes (cm)
    pos = {n: p @ to_bvh.T for n, _parent, p in joints}
    parent = {n: p for n, p, _pos in joints}
    children: dict[str | None, list[str]] = {}
    for n, p, _pos in joints:
        children.setdefault(p, []).append(n)
    lines = ["HIERARCHY"]

    def emit(n: str, depth: int) -> None:
        ind = "\t" * depth
        p = parent[n]
        off = pos[n] if p is None else pos[n] - pos[p]
        lines.append(f"{ind}{'ROOT' if p is None else 'JOINT'} {n}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET {off[0]:.5f} {off[1]:.5f} {off[2]:.5f}")
        if p is None:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{ind}\tCHANNELS 3 Zrotation Xrotation Yrotation")
        kids = children.get(n, [])
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            d = off / max(np.linalg.norm(off), 1e-9) * 2.0
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET {d[0]:.5f} {d[1]:.5f} {d[2]:.5f}")
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(joints[0][0], 0)
    n_ch = 3 + 3 * len(joints)
    root = pos[joints[0][0]]
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    row = " ".join(f"{v:.5f}" for v in [*root, *([0.0] * (n_ch - 3))])
    lines += [row] * frames
    return "\n".join(lines) + "\n"


def beat_bvh_import_spec(a_pose: float = 0.0) -> RigSpec:
    """What Blender's BVH importer builds from beat_bvh_text (bone tails at the single child's head, the
    average of several children's heads, or the end site), for tests without Blender."""
    joints = beat_joints(a_pose)
    kids: dict[str, list[np.ndarray]] = {}
    for _n, p, pos in joints:
        if p:
            kids.setdefault(p, []).append(pos)
    spec = RigSpec("beat_bvh", "beat", [], dict(BEAT_EXPECTED), a_pose)
    for n, p, pos in joints:
        if n in kids:
            tail = np.mean(kids[n], axis=0)
        else:
            parent_pos = next(q for m, _pp, q in joints if m == p)
            tail = pos + (pos - parent_pos) / max(np.linalg.norm(pos - parent_pos), 1e-9) * 0.02
        spec.bones.append(BoneSpec(n, pos, tail, p))
    return spec


# --------------------------------------------------------------------------------------------------------
# Variants


def fbx_units(spec: RigSpec) -> RigSpec:
    """Data Y-up in centimetres, object rotated +90 degrees about X and scaled 0.01 (FBX imports)."""
    to_data = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]) * 100.0
    for b in spec.bones:
        b.head, b.tail = b.head @ to_data.T, b.tail @ to_data.T
    spec.rotation = (math.pi / 2, 0.0, 0.0)
    spec.scale = 0.01
    spec.data_to_world = np.eye(4)
    spec.data_to_world[:3, :3] = np.linalg.inv(to_data)
    return spec


def turned(spec: RigSpec, degrees: float = 180.0, scale: float = 1.0) -> RigSpec:
    """The object rotated about Z (the character then faces elsewhere in the world) and scaled."""
    spec.rotation = (spec.rotation[0], spec.rotation[1], spec.rotation[2] + math.radians(degrees))
    spec.scale *= scale
    return spec


def renamed(spec: RigSpec, seed: int = 0, keep_sides: bool = False) -> RigSpec:
    """The same rig with random bone names ('bn_4821', or 'bn_4821.L' with keep_sides)."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(9000)[: len(spec.bones)] + 1000
    mapping = {}
    for b, c in zip(spec.bones, codes, strict=True):
        suffix = ""
        if keep_sides:
            from gestura.retarget.detect import bone_key

            suffix = {"L": ".L", "R": ".R", "": ""}[bone_key(b.name)[0]]
        mapping[b.name] = f"bn_{c}{suffix}"
    for b in spec.bones:
        b.name = mapping[b.name]
        b.parent = mapping[b.parent] if b.parent else None
        b.copy_from = mapping[b.copy_from] if b.copy_from else None
    spec.expected = {j: mapping[n] for j, n in spec.expected.items()}
    spec.preset = ""
    return spec


def without(spec: RigSpec, drop: set[str]) -> RigSpec:
    """The rig without some bones (their children re-parented to the dropped bone's parent)."""
    parent = {b.name: b.parent for b in spec.bones}

    def up(n: str | None) -> str | None:
        while n is not None and n in drop:
            n = parent[n]
        return n

    spec.bones = [b for b in spec.bones if b.name not in drop]
    for b in spec.bones:
        b.parent = up(b.parent)
    spec.expected = {j: n for j, n in spec.expected.items() if n not in drop}
    return spec


def bust(seed: int = 0) -> RigSpec:
    """An upper-body rig (a streamer avatar) with random names: a root at the hips, spine, neck, head and
    arms with fingers, no legs. Topology cannot find its hips (no legs reach a floor)."""
    spec = mixamo(0.0, prefix="")
    legs = {b.name for b in spec.bones if any(t in b.name for t in ("UpLeg", "Leg", "Foot", "Toe"))}
    return renamed(without(spec, legs), seed)


# --------------------------------------------------------------------------------------------------------
# Without Blender


def blender_bone_matrix(head: np.ndarray, tail: np.ndarray, roll: float) -> np.ndarray:
    """bone.matrix_local as Blender computes it from head, tail and roll (vec_roll_to_mat3)."""
    nor = (tail - head) / np.linalg.norm(tail - head)
    x, y, z = nor
    theta = 1.0 + y
    theta_alt = x * x + z * z
    if theta > 1e-5 or theta_alt > 1e-9:
        if theta <= 1e-5:
            theta = theta_alt * 0.5 + theta_alt * theta_alt * 0.125
        b = np.array([[1 - x * x / theta, x, -x * z / theta],
                      [-x, y, -z],
                      [-x * z / theta, z, 1 - z * z / theta]])
    else:
        b = np.diag([-1.0, -1.0, 1.0])
    c, s = math.cos(roll), math.sin(roll)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    r = np.eye(3) * c + (1 - c) * np.outer(nor, nor) + s * k
    m = np.eye(4)
    m[:3, :3] = r @ b
    m[:3, 3] = head
    return m


def to_rig_rest(spec: RigSpec, roll_seed: int | None = 0) -> RigRest:
    """A RigRest of the spec (bones ordered parents first), with random bone rolls."""
    rng = np.random.default_rng(roll_seed) if roll_seed is not None else None
    by_name = {b.name: b for b in spec.bones}
    order: list[BoneSpec] = []
    done: set[str] = set()

    def visit(b: BoneSpec) -> None:
        if b.name in done:
            return
        if b.parent:
            visit(by_name[b.parent])
        done.add(b.name)
        order.append(b)

    for b in spec.bones:
        visit(b)
    index = {b.name: i for i, b in enumerate(order)}
    mats = np.array([blender_bone_matrix(b.head, b.tail, float(rng.uniform(-math.pi, math.pi)) if rng else 0.0)
                     for b in order])
    return RigRest(
        [b.name for b in order], [index[b.parent] if b.parent else -1 for b in order], mats,
        np.array([b.tail for b in order]), world=spec.world,
        constrained=[b.copy_from is not None for b in order], deform=[b.deform for b in order],
    )


SPECS: dict[str, Callable[..., RigSpec]] = {
    "smplx": smplx, "smplh": smplh, "mixamo": mixamo, "vroid": vroid, "vrm1": vrm1,
    "ue4": lambda a_pose=0.0: unreal(4, a_pose), "ue5": lambda a_pose=0.0: unreal(5, a_pose),
    "arp": auto_rig_pro, "rigify_def": rigify_def, "beat": beat_bvh_import_spec,
}


def expected_world_directions(motion, joints: list[str], facing: np.ndarray,
                              pelvis_rest_dir: np.ndarray | None = None) -> np.ndarray:
    """(T, len(joints), 3) world directions the mapped bones must have: the canonical bone's direction, or,
    for a joint whose canonical child is not mapped, the direction to the next mapped joint down its chain;
    the pelvis bone (any rest direction) turns with the canonical pelvis. Written apart from the solver."""
    from gestura.inference.skeleton import PRIMARY_CHILD, bone_directions

    glob, pos = forward_kinematics(motion.rotations, motion.root)
    dirs = bone_directions(glob)
    mats = None
    out = np.zeros((motion.num_frames, len(joints), 3))
    mapped = set(joints)
    for k, joint in enumerate(joints):
        j = JOINT_INDEX[joint]
        if joint == "pelvis":
            from gestura.inference.rotations import quat_to_matrix

            mats = quat_to_matrix(glob[:, 0]) if mats is None else mats
            assert pelvis_rest_dir is not None
            out[:, k] = (facing @ mats @ facing.T @ pelvis_rest_dir)
            continue
        c = PRIMARY_CHILD[j]
        if c >= 0 and JOINT_NAMES[c] not in mapped:
            while c >= 0 and JOINT_NAMES[c] not in mapped:
                c = PRIMARY_CHILD[c]
            if c >= 0:
                d = pos[:, c] - pos[:, j]
                out[:, k] = d / np.linalg.norm(d, axis=-1, keepdims=True) @ facing.T
                continue
        out[:, k] = dirs[:, j] @ facing.T
    return out / np.linalg.norm(out, axis=-1, keepdims=True)
