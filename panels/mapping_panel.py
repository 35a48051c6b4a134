"""Bone Mapping: a sub-panel of the Gesture tab to see and correct which bone is which canonical joint."""

import bpy

# Canonical joints by body part, in the order a rigger reads a body (inference.skeleton.BODY_PARTS, kept
# here so drawing the panel imports no numpy).
_SIDES = ("left", "right")
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("torso", "Spine and Head", ("pelvis", "spine1", "spine2", "spine3", "neck", "head")),
    *((f"{s}_arm", f"{s.capitalize()} Arm", tuple(f"{s}_{j}" for j in ("collar", "shoulder", "elbow", "wrist")))
      for s in _SIDES),
    *((f"{s}_hand", f"{s.capitalize()} Fingers", tuple(f"{s}_{f}{k}" for f in _FINGERS for k in (1, 2, 3)))
      for s in _SIDES),
    ("legs", "Legs", tuple(f"{s}_{j}" for s in _SIDES for j in ("hip", "knee", "ankle", "foot"))),
)
_OPEN_BY_DEFAULT = {"torso", "left_arm", "right_arm"}


class GESTURA_PT_mapping(bpy.types.Panel):
    """Which bone of the rig receives which canonical joint"""

    bl_label = "Bone Mapping"
    bl_idname = "GESTURA_PT_mapping"
    bl_parent_id = "GESTURA_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gesture"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        if rig is None or rig.type != "ARMATURE":
            layout.label(text="Pick an armature as the rig", icon="INFO")
            return
        mapping = rig.gestura_mapping

        row = layout.row(align=True)
        row.operator("gestura.mapping_detect", icon="VIEWZOOM")
        row.operator_menu_enum("gestura.mapping_load", "preset", text="Load", icon="IMPORT")
        row = layout.row(align=True)
        row.prop(mapping, "preset_name", text="")
        row.operator("gestura.mapping_save", text="Save", icon="EXPORT")
        layout.prop(mapping, "root_motion")

        if not mapping.joints:
            layout.label(text="Bones are detected when generating.", icon="INFO")
            layout.label(text="Auto-Detect to see and correct them.")
            if mapping.report:
                _wrapped(layout, mapping.report)
            return

        row = layout.row(align=True)
        row.prop(mapping, "use_manual")
        row.operator("gestura.mapping_mirror", text="", icon="MOD_MIRROR")
        row.operator("gestura.mapping_clear", text="", icon="X")
        if mapping.report:
            _wrapped(layout, mapping.report)
        body_col = layout.column()
        body_col.active = mapping.use_manual
        for key, label, joints in GROUPS:
            header, body = body_col.panel(f"gestura_mapping_{key}", default_closed=key not in _OPEN_BY_DEFAULT)
            set_count = sum(1 for j in joints if (item := mapping.joints.get(j)) is not None and item.bone)
            header.label(text=f"{label}  ({set_count}/{len(joints)})")
            if body is None:
                continue
            col = body.column(align=True)
            for joint in joints:
                item = mapping.joints.get(joint)
                if item is None:
                    continue
                col.prop_search(item, "bone", rig.data, "bones", text=joint.replace("_", " ").title())


def _wrapped(layout, text: str, width: int = 48) -> None:
    import textwrap

    col = layout.column(align=True)
    for line in textwrap.wrap(text, width)[:8]:
        col.label(text=line)


def register() -> None:
    bpy.utils.register_class(GESTURA_PT_mapping)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_PT_mapping)
