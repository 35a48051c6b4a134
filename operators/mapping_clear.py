"""Clear the manual bone mapping: generation detects the bones again."""

import bpy


class GESTURA_OT_mapping_clear(bpy.types.Operator):
    """Remove the manual bone mapping of the rig (generation detects the bones again)"""

    bl_idname = "gestura.mapping_clear"
    bl_label = "Clear Mapping"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        return rig is not None and rig.type == "ARMATURE" and len(rig.gestura_mapping.joints) > 0

    def execute(self, context):
        mapping = context.scene.gestura.rig.gestura_mapping
        mapping.joints.clear()
        mapping.report = ""
        self.report({"INFO"}, "Manual mapping cleared: bones are detected when generating")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_mapping_clear)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_mapping_clear)
