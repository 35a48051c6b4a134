"""Fill the style prompt from the style catalogue (the same vocabulary the engine and corpus use)."""

import bpy
from bpy.props import EnumProperty


def _style_items(_self, _context):
    # Imported when the menu opens, not at register(): start-up stays fast.
    from ..inference.style_catalog import STYLE_CATALOG

    items = [(e.name, e.label.capitalize(), e.train_descriptions[0] if e.train_descriptions else e.label)
             for e in STYLE_CATALOG]
    _style_items.cache = items  # type: ignore[attr-defined]  # Blender needs the strings kept alive
    return items


class GESTURA_OT_style_preset(bpy.types.Operator):
    """Use a named style from Gestura's catalogue as the style prompt"""

    bl_idname = "gestura.style_preset"
    bl_label = "Style Preset"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}
    bl_property = "style"

    style: EnumProperty(name="Style", items=_style_items)  # type: ignore[valid-type]

    def execute(self, context):
        from ..inference.style_catalog import style_by_name

        context.scene.gestura.style_prompt = style_by_name(self.style).label
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_style_preset)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_style_preset)
