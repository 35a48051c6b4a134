"""Save the manual bone mapping as a JSON preset in the extension's user folder."""

import bpy
from bpy.props import BoolProperty


class GESTURA_OT_mapping_save(bpy.types.Operator):
    """Save the mapping table as a preset (JSON in Gestura's user folder) to load onto other rigs"""

    bl_idname = "gestura.mapping_save"
    bl_label = "Save Mapping Preset"
    bl_options = {"REGISTER"}

    overwrite: BoolProperty(name="Overwrite", default=True, options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        if rig is None or rig.type != "ARMATURE" or not any(i.bone for i in rig.gestura_mapping.joints):
            cls.poll_message_set("Set or detect some bones first")
            return False
        return True

    def execute(self, context):
        from ..mapping_properties import preset_path
        from ..retarget.detect import mapping_to_json

        mapping = context.scene.gestura.rig.gestura_mapping
        try:
            path = preset_path(mapping.preset_name)
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if path.exists() and not self.overwrite:
            self.report({"ERROR"}, f"A preset named {path.stem!r} exists")
            return {"CANCELLED"}
        joints = {item.name: item.bone for item in mapping.joints if item.bone}
        path.write_text(mapping_to_json(joints, path.stem, root_motion=mapping.root_motion), encoding="utf-8")
        self.report({"INFO"}, f"Saved bone-map preset {path.stem!r} ({len(joints)} joints) to {path}")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_mapping_save)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_mapping_save)
