"""How Generate Gestures writes its keys, stored on the Scene as ``scene.gestura_keys``: key reduction (a maximum
angular error per bone), root-motion tolerance, and one NLA track per body part."""

import math

import bpy
from bpy.props import BoolProperty, FloatProperty, PointerProperty


class GESTURA_PG_keys(bpy.types.PropertyGroup):
    reduce_keys: BoolProperty(  # type: ignore[valid-type]
        name="Reduce Keys", default=True,
        description="Key only the frames needed to stay within the maximum error, with smooth handles "
                    "(off: a key on every frame)",
    )
    max_angle_error: FloatProperty(  # type: ignore[valid-type]
        name="Max Rotation Error", subtype="ANGLE", default=math.radians(0.5), min=0.0, soft_max=math.radians(5.0),
        precision=2,
        description="Largest angle by which any bone's keyed rotation may differ from the generated motion on "
                    "any frame (0: key every frame)",
    )
    max_location_error: FloatProperty(  # type: ignore[valid-type]
        name="Max Root Motion Error", subtype="DISTANCE", unit="LENGTH", default=0.001, min=0.0, soft_max=0.05,
        precision=4,
        description="Largest distance, in world units, by which the keyed root motion may differ from the "
                    "generated motion (0: key every frame)",
    )
    nla_per_part: BoolProperty(  # type: ignore[valid-type]
        name="NLA Track per Body Part", default=False,
        description="Put each body part (head, torso, arms, hands, lower body) in its own action on its own NLA "
                    "track, to mute, solo, blend, retime or edit parts separately",
    )


def key_options(scene):
    """The retarget.blender_rig.KeyOptions these settings stand for (defaults when the scene has none)."""
    from .retarget.blender_rig import KeyOptions

    settings = getattr(scene, "gestura_keys", None)
    if settings is None:
        return KeyOptions()
    reduce = bool(settings.reduce_keys)
    return KeyOptions(
        max_angle_deg=math.degrees(settings.max_angle_error) if reduce else 0.0,
        max_distance=float(settings.max_location_error) if reduce else 0.0,
        nla_per_part=bool(settings.nla_per_part),
    )


_classes = (GESTURA_PG_keys,)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    # Set through setattr: the type stubs do not know the attribute the registration adds.
    setattr(bpy.types.Scene, "gestura_keys", PointerProperty(type=GESTURA_PG_keys))  # type: ignore[func-returns-value]  # noqa: B010


def unregister() -> None:
    delattr(bpy.types.Scene, "gestura_keys")  # noqa: B043
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
