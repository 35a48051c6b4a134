"""The "Keys" sub-panel of Generate Gestures: how keys are written (reduction, NLA per part), what the last
generation wrote, and the BVH export."""

import bpy


def _gestura_action(rig):
    """The rig's active action if Gestura wrote it, else the Gestura action on its top-most NLA track."""
    anim = rig.animation_data if rig is not None else None
    if anim is None:
        return None
    actions = [anim.action] + [s.action for t in reversed(list(anim.nla_tracks)) for s in t.strips]
    return next((a for a in actions if a is not None and "gestura_keys" in a), None)


class GESTURA_PT_keys(bpy.types.Panel):
    bl_label = "Keys"
    bl_idname = "GESTURA_PT_keys"
    bl_parent_id = "GESTURA_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gesture"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        return getattr(context.scene, "gestura_keys", None) is not None

    def draw(self, context):
        layout = self.layout
        keys = context.scene.gestura_keys
        layout.use_property_split = True
        layout.use_property_decorate = False

        layout.prop(keys, "reduce_keys")
        col = layout.column()
        col.active = keys.reduce_keys
        col.prop(keys, "max_angle_error")
        col.prop(keys, "max_location_error")
        layout.prop(keys, "nla_per_part")

        action = _gestura_action(getattr(getattr(context.scene, "gestura", None), "rig", None))
        if action is not None:
            figures = action["gestura_keys"]
            box = layout.box()
            box.label(text=action.name, icon="ACTION")
            box.label(text=f"{figures['keys']:,} of {figures['dense_keys']:,} keys ({figures['ratio']:.1%})")
            box.label(text=f"Max rotation error {figures['max_angle_deg']:.2f}\N{DEGREE SIGN}")
        layout.operator("gestura.export_bvh", icon="EXPORT")


def register() -> None:
    bpy.utils.register_class(GESTURA_PT_keys)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_PT_keys)
