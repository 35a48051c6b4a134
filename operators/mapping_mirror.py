"""Mirror the manual bone mapping from the left side to the right side."""

import bpy


class GESTURA_OT_mapping_mirror(bpy.types.Operator):
    """Set each right-side joint to the mirror of its left-side bone (hand.L -> hand.R, LeftArm -> RightArm,
    upperarm_l -> upperarm_r, J_Bip_L_* -> J_Bip_R_*)"""

    bl_idname = "gestura.mapping_mirror"
    bl_label = "Mirror Left to Right"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        return rig is not None and rig.type == "ARMATURE" and len(rig.gestura_mapping.joints) > 0

    def execute(self, context):
        from ..mapping_properties import set_joint
        from ..retarget.detect import mirror_bone_name

        rig = context.scene.gestura.rig
        mapping = rig.gestura_mapping
        names = [b.name for b in rig.data.bones]
        done, missed = 0, []
        for item in list(mapping.joints):
            if not item.name.startswith("left_") or not item.bone:
                continue
            other = mirror_bone_name(item.bone, names)
            if other is None:
                missed.append(item.bone)
                continue
            set_joint(mapping, "right_" + item.name[len("left_"):], other)
            done += 1
        if missed:
            self.report({"WARNING"}, f"Mirrored {done} joints; no right-side bone for: " + ", ".join(missed[:8]))
        else:
            self.report({"INFO"}, f"Mirrored {done} joints to the right side")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_mapping_mirror)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_mapping_mirror)
