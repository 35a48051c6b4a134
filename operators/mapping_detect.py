"""Auto-Detect: fill the rig's manual bone mapping from detection (names and topology), as a starting
point to correct by hand. When detection fails, whatever it found is filled in and the report says what is
missing."""

import bpy


class GESTURA_OT_mapping_detect(bpy.types.Operator):
    """Detect the rig's bones for every canonical joint and fill the mapping table with them"""

    bl_idname = "gestura.mapping_detect"
    bl_label = "Auto-Detect"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        if rig is None or rig.type != "ARMATURE":
            cls.poll_message_set("Pick an armature as the rig")
            return False
        return True

    def execute(self, context):
        from ..inference.errors import RigError
        from ..mapping_properties import fill
        from ..retarget.detect import best_guess, detect_bone_map
        from ..retarget.detect_blender import read_rig

        rig = context.scene.gestura.rig
        mapping = rig.gestura_mapping
        try:
            rest = read_rig(rig)
        except RigError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        try:
            bone_map = detect_bone_map(rest)
        except RigError as err:
            fill(mapping, best_guess(rest))
            mapping.use_manual = True
            mapping.report = str(err)
            self.report({"WARNING"}, f"Partly detected; set the missing bones by hand. {err}")
            return {"FINISHED"}
        fill(mapping, bone_map.joints)
        mapping.use_manual = True
        mapping.report = bone_map.describe()
        self.report({"INFO"}, bone_map.describe())
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_mapping_detect)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_mapping_detect)
