"""Gestura's settings, stored on the Scene as ``scene.gestura``."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


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
        items=[
            ("diffusion", "Diffusion (GestureDiffuCLIP)",
             "Latent diffusion model: style from the prompt, per-part strength (needs PyTorch)"),
            ("rule", "Rule-based (fast)", "Fast, deterministic procedural gestures"),
        ],
        default="diffusion",
    )
    # Diffusion engine settings (inference.pipeline.EngineOptions); the rule-based engine ignores them.
    style_strength: FloatProperty(  # type: ignore[valid-type]
        name="Style Strength", default=2.0, min=0.0, max=6.0,
        description="How strongly the motion follows the style prompt (guidance weight; 0 ignores the prompt)",
    )
    use_part_strength: BoolProperty(  # type: ignore[valid-type]
        name="Per-Part Strength", default=False,
        description="Give body parts their own style strength (off: every part uses Style Strength)",
    )
    strength_head: FloatProperty(  # type: ignore[valid-type]
        name="Head", default=2.0, min=0.0, max=6.0, description="Style strength of the head and neck",
    )
    strength_torso: FloatProperty(  # type: ignore[valid-type]
        name="Torso", default=2.0, min=0.0, max=6.0, description="Style strength of the spine and collars",
    )
    strength_arms: FloatProperty(  # type: ignore[valid-type]
        name="Arms", default=2.0, min=0.0, max=6.0, description="Style strength of both arms",
    )
    strength_hands: FloatProperty(  # type: ignore[valid-type]
        name="Hands", default=2.0, min=0.0, max=6.0, description="Style strength of both hands' fingers",
    )
    strength_lower_body: FloatProperty(  # type: ignore[valid-type]
        name="Lower Body", default=2.0, min=0.0, max=6.0,
        description="Style strength of the pelvis, legs and root motion",
    )
    style_guidance: FloatProperty(  # type: ignore[valid-type]
        name="Style Guidance", default=1.0, min=0.0, soft_max=2.0, max=4.0,
        description="How hard each sampler step is nudged towards the prompted style by the model's motion style "
                    "encoder (0: off; 1: the starter model's tuned value; more follows the style harder and "
                    "moves more energetically)",
    )
    sampler_steps: IntProperty(  # type: ignore[valid-type]
        name="Steps", default=0, min=0, soft_max=100, max=1000,
        description="Sampler steps (0: the model's default); more steps are slower and can be smoother",
    )
    seed: IntProperty(name="Seed", default=0, min=0, description="Variation; the same seed gives the same motion")  # type: ignore[valid-type]
    status: StringProperty(name="Status", options={"SKIP_SAVE"})  # type: ignore[valid-type]


class GESTURA_PG_job(bpy.types.PropertyGroup):
    """The running generation, as the UI shows it (on the window manager: never saved, never undone)."""

    running: BoolProperty(name="Running", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    progress: FloatProperty(  # type: ignore[valid-type]
        name="Progress", min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"},
    )
    text: StringProperty(name="Progress Text", options={"SKIP_SAVE"})  # type: ignore[valid-type]


_classes = (GESTURA_PG_settings, GESTURA_PG_job)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    # Set through setattr: the type stubs do not know the attribute the registration adds.
    setattr(bpy.types.Scene, "gestura", PointerProperty(type=GESTURA_PG_settings))  # noqa: B010
    setattr(bpy.types.WindowManager, "gestura_job", PointerProperty(type=GESTURA_PG_job))  # noqa: B010


def unregister() -> None:
    delattr(bpy.types.WindowManager, "gestura_job")  # noqa: B043
    delattr(bpy.types.Scene, "gestura")  # noqa: B043
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
