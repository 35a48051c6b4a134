"""Export Gestures as BVH: the last canonical motion generated onto a rig (SMPL-X skeleton, T-pose rest),
for other DCCs and retargeting tools. Generate Gestures keeps that motion on the rig object (the custom
property ``gestura_motion``, saved with the .blend), so the export works after reopening the file too."""

from pathlib import Path

import bpy
from bpy.props import FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper


def _rig_with_motion(context):
    from ..retarget.blender_rig import MOTION_PROP

    settings = getattr(context.scene, "gestura", None)
    for obj in (getattr(settings, "rig", None), context.active_object):
        if obj is not None and obj.type == "ARMATURE" and obj.get(MOTION_PROP) is not None:
            return obj
    return None


class GESTURA_OT_export_bvh(bpy.types.Operator, ExportHelper):  # type: ignore[misc]  # stubs: check() differs
    """Write the motion last generated onto the rig as BVH (the canonical SMPL-X skeleton, T-pose rest, Y up)"""

    bl_idname = "gestura.export_bvh"
    bl_label = "Export Gestures as BVH"
    bl_options = {"REGISTER"}

    filename_ext = ".bvh"
    filter_glob: StringProperty(default="*.bvh", options={"HIDDEN"})  # type: ignore[valid-type]
    scale: FloatProperty(  # type: ignore[valid-type]
        name="Units per Metre", default=100.0, min=1e-4, soft_max=1000.0,
        description="BVH length units per metre (100: centimetres, what most BVH tools expect)",
    )

    @classmethod
    def poll(cls, context):
        if _rig_with_motion(context) is None:
            cls.poll_message_set("Generate gestures onto a rig first (the rig in the Gesture panel or the active "
                                 "armature)")
            return False
        return True

    def invoke(self, context, event):
        rig = _rig_with_motion(context)
        if not self.filepath and rig is not None:  # type: ignore[has-type]
            folder = Path(bpy.path.abspath("//")) if bpy.data.filepath else Path.home()
            self.filepath = str(folder / f"{bpy.path.clean_name(rig.name)}_gestures.bvh")
        return super().invoke(context, event)

    def execute(self, context):
        from ..inference.bvh import write_bvh
        from ..retarget.blender_rig import stored_motion

        rig = _rig_with_motion(context)
        stored = stored_motion(rig)
        if stored is None:
            self.report({"ERROR"}, "The rig holds no readable Gestura motion: generate gestures again")
            return {"CANCELLED"}
        motion, _info = stored
        path = Path(bpy.path.abspath(self.filepath)).with_suffix(".bvh")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bvh(motion, path, scale=self.scale)
        except OSError as err:
            self.report({"ERROR"}, f"Cannot write {path}: {err.strerror or err}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Gestura: {motion.num_frames} frames at {motion.fps:g} fps written to {path}")
        return {"FINISHED"}


def _menu_entry(self, _context):
    self.layout.operator(GESTURA_OT_export_bvh.bl_idname, text="Gestura Gestures (.bvh)")


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_export_bvh)
    bpy.types.TOPBAR_MT_file_export.append(_menu_entry)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_export.remove(_menu_entry)
    bpy.utils.unregister_class(GESTURA_OT_export_bvh)
