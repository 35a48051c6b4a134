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
        if settings.engine == "diffusion":
            layout.prop(settings, "style_strength", slider=True)
            layout.prop(settings, "style_guidance", slider=True)
            layout.prop(settings, "sampler_steps")
        layout.prop(settings, "seed")
        layout.separator()
        job = getattr(context.window_manager, "gestura_job", None)
        if job is not None and job.running:
            layout.progress(factor=job.progress, type="BAR", text=job.text or "Generating")
            row = layout.row()
            row.operator("gestura.cancel_generation", text="Cancel", icon="CANCEL")
            layout.label(text="Esc cancels. Keep working meanwhile.", icon="INFO")
        else:
            layout.operator("gestura.generate", icon="ARMATURE_DATA")
        if settings.status:
            layout.label(text=settings.status)


class GESTURA_PT_part_strength(bpy.types.Panel):
    """Per-body-part style strength of the diffusion engine (off: every part uses Style Strength)."""

    bl_label = "Per-Part Strength"
    bl_idname = "GESTURA_PT_part_strength"
    bl_parent_id = "GESTURA_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gesture"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        return settings is not None and settings.engine == "diffusion"

    def draw_header(self, context):
        self.layout.prop(context.scene.gestura, "use_part_strength", text="")

    def draw(self, context):
        layout = self.layout
        settings = context.scene.gestura
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(align=True)
        col.active = settings.use_part_strength
        for name in ("strength_head", "strength_torso", "strength_arms", "strength_hands", "strength_lower_body"):
            col.prop(settings, name, slider=True)


def draw_status_bar(self, context) -> None:
    """Progress of a running generation at the end of the status bar, with a cancel button."""
    job = getattr(context.window_manager, "gestura_job", None)
    if job is None or not job.running:
        return
    row = self.layout.row(align=True)
    row.ui_units_x = 14
    row.progress(factor=job.progress, type="BAR", text=f"Gestures: {job.text}" if job.text else "Gestures")
    row.operator("gestura.cancel_generation", text="", icon="X", emboss=False)


_classes = (GESTURA_PT_generate, GESTURA_PT_part_strength)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status_bar)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status_bar)
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
