"""Load a bone-map preset into the manual mapping: one the user saved (JSON), or one of Gestura's rig
presets (Mixamo, Rigify, VRM, ...) matched to the rig's bone names."""

import bpy
from bpy.props import EnumProperty


def _preset_items(_self, _context):
    from ..mapping_properties import user_presets
    from ..retarget.bonemaps import PRESETS

    items = [(f"user:{p.stem}", p.stem, f"Saved preset {p.name}") for p in user_presets()]
    items += [(f"rig:{p.name}", p.label, f"Gestura's {p.label} names, matched to this rig's bones")
              for p in PRESETS.values()]
    if not items:
        items = [("NONE", "No presets", "")]
    _preset_items.cache = items  # type: ignore[attr-defined]  # Blender needs the strings kept alive
    return items


class GESTURA_OT_mapping_load(bpy.types.Operator):
    """Fill the mapping table from a saved preset or from one of Gestura's rig presets"""

    bl_idname = "gestura.mapping_load"
    bl_label = "Load Mapping Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: EnumProperty(name="Preset", items=_preset_items)  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        rig = settings.rig if settings else None
        return rig is not None and rig.type == "ARMATURE"

    def execute(self, context):
        from ..mapping_properties import fill, preset_path
        from ..retarget.bonemaps import PRESETS
        from ..retarget.detect import NameIndex, mapping_from_json, match_preset

        rig = context.scene.gestura.rig
        mapping = rig.gestura_mapping
        names = [b.name for b in rig.data.bones]
        kind, _, key = self.preset.partition(":")
        if kind == "rig" and key in PRESETS:
            joints = match_preset(PRESETS[key], NameIndex(names)).joints
            wanted = len(PRESETS[key].joints)
            label = PRESETS[key].label
        elif kind == "user":
            try:
                path = preset_path(key)
                label, table, root_motion = mapping_from_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                self.report({"ERROR"}, f"Cannot load preset {key!r}: {err}")
                return {"CANCELLED"}
            index = NameIndex(names)
            joints = {}
            for joint, bone in table.items():
                found, _exact = index.find(bone)
                if found is not None:
                    joints[joint] = found
            wanted = len(table)
            mapping.root_motion = root_motion
            label = label or key
        else:
            self.report({"ERROR"}, "No preset to load")
            return {"CANCELLED"}
        fill(mapping, joints)
        mapping.use_manual = True
        mapping.preset_name = key
        mapping.report = f"Loaded {label}: {len(joints)} of {wanted} joints found in this rig"
        self.report({"INFO"} if len(joints) == wanted else {"WARNING"}, mapping.report)
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(GESTURA_OT_mapping_load)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_OT_mapping_load)
