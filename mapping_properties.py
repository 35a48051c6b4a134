"""The manual bone mapping, stored on the rig object as ``object.gestura_mapping``: one item per
canonical joint (the item's name) with the rig's bone for it. Generation uses it when "Use Manual
Mapping" is on and at least one bone is set; otherwise it detects the mapping."""

import os
import re
from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, PointerProperty, StringProperty


class GESTURA_PG_joint_bone(bpy.types.PropertyGroup):
    # `name` (built in) holds the canonical joint, e.g. "left_wrist".
    bone: StringProperty(  # type: ignore[valid-type]
        name="Bone", description="The rig's bone for this canonical joint (empty: none, it follows its parent)",
    )


class GESTURA_PG_bone_mapping(bpy.types.PropertyGroup):
    use_manual: BoolProperty(  # type: ignore[valid-type]
        name="Use Manual Mapping", default=True,
        description="Generate with the bones set below instead of detecting them (when any bone is set)",
    )
    joints: CollectionProperty(type=GESTURA_PG_joint_bone)  # type: ignore[valid-type]
    root_motion: BoolProperty(  # type: ignore[valid-type]
        name="Root Motion", default=True,
        description="Key the hips bone's location (sway and weight shift); off keys rotations only",
    )
    preset_name: StringProperty(  # type: ignore[valid-type]
        name="Preset Name", description="Name of the mapping preset to save", default="my_rig",
    )
    report: StringProperty(name="Report", options={"SKIP_SAVE"})  # type: ignore[valid-type]


_classes = (GESTURA_PG_joint_bone, GESTURA_PG_bone_mapping)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    setattr(bpy.types.Object, "gestura_mapping", PointerProperty(type=GESTURA_PG_bone_mapping))  # type: ignore[func-returns-value]  # noqa: B010


def unregister() -> None:
    delattr(bpy.types.Object, "gestura_mapping")  # noqa: B043
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)


def set_joint(mapping: GESTURA_PG_bone_mapping, joint: str, bone: str) -> None:
    """Set one canonical joint's bone, adding the item when missing."""
    item = mapping.joints.get(joint)
    if item is None:
        item = mapping.joints.add()
        item.name = joint
    item.bone = bone


def fill(mapping: GESTURA_PG_bone_mapping, joints: dict[str, str], *, all_joints: bool = True) -> None:
    """Replace the table: one item per canonical joint (in canonical order) when all_joints, else only
    the given ones."""
    from .inference.skeleton import JOINT_NAMES

    mapping.joints.clear()
    for joint in JOINT_NAMES:
        if all_joints or joint in joints:
            item = mapping.joints.add()
            item.name = joint
            item.bone = joints.get(joint, "")


def presets_dir() -> Path:
    """Where bone-map presets are saved: the extension's user folder (kept across updates), or, when the
    package is not installed as an extension (development), Blender's user presets folder.
    GESTURA_PRESETS_DIR overrides both (tests)."""
    override = os.environ.get("GESTURA_PRESETS_DIR")
    if override:
        path = Path(override)
    elif __package__ and __package__.startswith("bl_ext."):
        path = Path(bpy.utils.extension_path_user(__package__, path="presets", create=True))
    else:
        path = Path(bpy.utils.user_resource("SCRIPTS", path=os.path.join("presets", "gestura", "bone_maps")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def preset_path(name: str) -> Path:
    """The JSON file of a named preset; ValueError for names that are empty or not plain file names."""
    name = name.strip()
    if not name or not re.fullmatch(r"[\w\- .]+", name) or name.startswith("."):
        raise ValueError(f"Preset names use letters, digits, spaces, '-', '_' and '.': {name!r}")
    return presets_dir() / f"{name}.json"


def user_presets() -> list[Path]:
    try:
        return sorted(presets_dir().glob("*.json"))
    except OSError:
        return []
