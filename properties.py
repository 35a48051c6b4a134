"""Gestura's settings, stored on the Scene as ``scene.gestura``."""

import bpy
from bpy.props import EnumProperty, IntProperty, PointerProperty, StringProperty


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class GESTURA_PG_settings(bpy.types.PropertyGroup):
    rig: PointerProperty(  # type: ignore[valid-type]
        name="Rig", type=bpy.types.Object, poll=_is_armature,
        description="Armature that receives the gesture animation",
    )
    audio_source: EnumProperty(  # type: ignore[valid-type]
        name="Audio",
        items=[
            ("STRIP", "Sound Strip", "A sound strip in the sequencer; keys start at the strip's start"),
            ("FILE", "File", "An audio file (wav, flac, ogg, mp3)"),
        ],
        default="STRIP",
    )
    sound_strip: StringProperty(name="Sound Strip", description="Name of the sequencer sound strip")  # type: ignore[valid-type]
    audio_file: StringProperty(name="Audio File", subtype="FILE_PATH")  # type: ignore[valid-type]
    start_frame: IntProperty(  # type: ignore[valid-type]
        name="Start Frame", default=1, description="Frame where the audio file starts (audio files only)",
    )
    transcript_source: EnumProperty(  # type: ignore[valid-type]
        name="Transcript",
        items=[
            ("NONE", "None", "Gestures follow the speech rhythm only"),
            ("FILE", "File", "Plain text (aligned automatically, English), SRT, WebVTT or Praat TextGrid"),
            ("TEXT_STRIPS", "Text Strips", "The sequencer's text strips, with their timing"),
        ],
        default="NONE",
    )
    transcript_file: StringProperty(name="Transcript File", subtype="FILE_PATH")  # type: ignore[valid-type]
    text_channel: IntProperty(  # type: ignore[valid-type]
        name="Text Channel", default=0, min=0, max=128,
        description="Sequencer channel of the transcript text strips (0: any channel)",
    )
    style_prompt: StringProperty(  # type: ignore[valid-type]
        name="Style", description="How the speaker gestures, e.g. 'excited keynote speaker' (empty: neutral)",
    )
    engine: EnumProperty(  # type: ignore[valid-type]
        name="Engine",
        items=[("rule", "Rule-based", "Fast, deterministic procedural gestures")],
        default="rule",
    )
    seed: IntProperty(name="Seed", default=0, min=0, description="Variation; the same seed gives the same motion")  # type: ignore[valid-type]
    status: StringProperty(name="Status", options={"SKIP_SAVE"})  # type: ignore[valid-type]


_classes = (GESTURA_PG_settings,)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    # Set through setattr: the type stubs do not know the attribute the registration adds.
    setattr(bpy.types.Scene, "gestura", PointerProperty(type=GESTURA_PG_settings))  # noqa: B010


def unregister() -> None:
    delattr(bpy.types.Scene, "gestura")  # noqa: B043
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
