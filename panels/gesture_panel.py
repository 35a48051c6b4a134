"""The "Gesture" tab of the 3D viewport's sidebar."""

import bpy


class GESTURA_PT_generate(bpy.types.Panel):
    bl_label = "Generate Gestures"
    bl_idname = "GESTURA_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gesture"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.gestura
        layout.use_property_split = True
        layout.use_property_decorate = False

        layout.prop(settings, "rig")
        col = layout.column(heading="Speech")
        col.prop(settings, "audio_source")
        if settings.audio_source == "STRIP":
            if scene.sequence_editor:
                col.prop_search(settings, "sound_strip", scene.sequence_editor, "strips_all", text="Strip")
            else:
                col.label(text="The sequencer has no strips", icon="INFO")
        else:
            col.prop(settings, "audio_file")
            col.prop(settings, "start_frame")

        col = layout.column(heading="Transcript")
        col.prop(settings, "transcript_source")
        if settings.transcript_source == "FILE":
            col.prop(settings, "transcript_file")
        elif settings.transcript_source == "TEXT_STRIPS":
            col.prop(settings, "text_channel")

        row = layout.row(align=True)
        row.prop(settings, "style_prompt")
        row.operator_menu_enum("gestura.style_preset", "style", text="", icon="PRESET")
        layout.prop(settings, "engine")
        layout.prop(settings, "seed")
        layout.separator()
        layout.operator("gestura.generate", icon="ARMATURE_DATA")
        if settings.status:
            layout.label(text=settings.status)


def register() -> None:
    bpy.utils.register_class(GESTURA_PT_generate)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_PT_generate)
