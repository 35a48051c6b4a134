"""Generate Gestures: speech on the chosen rig as a new action, one undo step."""

import bpy

from ..inference.errors import GesturaError


class GESTURA_OT_generate(bpy.types.Operator):
    """Generate co-speech gestures for the selected rig from the chosen speech"""

    bl_idname = "gestura.generate"
    bl_label = "Generate Gestures"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        if settings is None:
            return False
        if settings.rig is None or settings.rig.type != "ARMATURE":
            cls.poll_message_set("Pick an armature as the rig")
            return False
        if settings.audio_source == "STRIP" and not settings.sound_strip:
            cls.poll_message_set("Pick a sound strip")
            return False
        if settings.audio_source == "FILE" and not settings.audio_file:
            cls.poll_message_set("Pick an audio file")
            return False
        return True

    def execute(self, context):
        from .scene_inputs import generate_on_rig

        settings = context.scene.gestura
        try:
            summary = generate_on_rig(context.scene, settings)
        except GesturaError as err:
            settings.status = str(err)
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        for warning in summary["warnings"]:
            self.report({"WARNING"}, warning)
        settings.status = (
            f"{summary['action']}: {summary['frames']} frames on {summary['mapped_bones']} bones, "
            f"{summary['words']} words"
        )
        self.report({"INFO"}, f"Gestura: {settings.status}")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_generate)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_generate)
