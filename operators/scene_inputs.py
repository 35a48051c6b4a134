"""Between the Blender scene and the core: gather a generation request from the scene's settings,
and land the result on the rig. Shared by the operator and the headless script."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..inference.errors import InputError, RigError
from ..inference.motion import resample_motion
from ..inference.pipeline import GenerationRequest, Progress, generate
from ..retarget.blender_rig import read_rig_rest, write_action
from ..retarget.bonemaps import BoneMap, detect_bone_map
from ..retarget.solve import RigRest, retarget

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff"}
TRANSCRIPT_SUFFIXES = {".txt", ".srt", ".vtt", ".textgrid"}


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def resolve_file(path: str, what: str, suffixes: set[str], library=None) -> str:
    """An absolute, existing file path from a scene path ('//' relative paths included)."""
    if not path or not path.strip():
        raise InputError(f"No {what} file is set")
    resolved = Path(bpy.path.abspath(path, library=library)).expanduser().resolve()
    if not resolved.exists():
        raise InputError(f"The {what} file does not exist: {resolved}")
    if not resolved.is_file():
        raise InputError(f"The {what} path is not a file: {resolved}")
    if resolved.suffix.lower() not in suffixes:
        raise InputError(
            f"Unsupported {what} file type {resolved.suffix or '(none)'!r}: {resolved.name}; "
            f"use one of {', '.join(sorted(suffixes))}"
        )
    return str(resolved)


def _strips(scene: bpy.types.Scene):
    sed = scene.sequence_editor
    return list(sed.strips_all) if sed else []


def find_sound_strip(scene: bpy.types.Scene, name: str):
    if not name:
        raise InputError("No sound strip is selected")
    for strip in _strips(scene):
        if strip.name == name:
            if strip.type != "SOUND":
                raise InputError(f"Strip {name!r} is not a sound strip")
            return strip
    raise InputError(f"There is no sound strip named {name!r} in scene {scene.name!r}")


def _sound_file(strip) -> str:
    sound = strip.sound
    if sound is None:
        raise InputError(f"Sound strip {strip.name!r} has no sound")
    if sound.packed_file is not None:
        # Packed sounds live only inside the .blend: write them to a private temporary file.
        suffix = Path(sound.filepath).suffix or ".wav"
        fd, tmp = tempfile.mkstemp(prefix="gestura_", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sound.packed_file.data)
        return tmp
    return resolve_file(sound.filepath, "sound", AUDIO_SUFFIXES, library=sound.library)


@dataclass
class SceneRequest:
    request: GenerationRequest
    start_frame: float
    source: str
    temporary_audio: bool = False  # the audio was unpacked from the .blend into a file of our own


def gather_request(scene: bpy.types.Scene, settings) -> SceneRequest:
    fps = scene_fps(scene)
    if settings.audio_source == "STRIP":
        strip = find_sound_strip(scene, settings.sound_strip)
        start = float(strip.frame_final_start)
        request = GenerationRequest(
            audio_path=_sound_file(strip),
            audio_offset_s=max(0.0, (strip.frame_final_start - strip.frame_start) / fps),
            audio_duration_s=(strip.frame_final_end - strip.frame_final_start) / fps,
        )
        source = f"sound strip {strip.name!r}"
        unpacked = strip.sound is not None and strip.sound.packed_file is not None
    else:
        start = float(settings.start_frame)
        request = GenerationRequest(audio_path=resolve_file(settings.audio_file, "audio", AUDIO_SUFFIXES))
        source = f"audio file {Path(request.audio_path).name!r}"
        unpacked = False

    if settings.transcript_source == "FILE":
        request.transcript_path = resolve_file(settings.transcript_file, "transcript", TRANSCRIPT_SUFFIXES)
    elif settings.transcript_source == "TEXT_STRIPS":
        segments = []
        for strip in _strips(scene):
            if strip.type == "TEXT" and (settings.text_channel == 0 or strip.channel == settings.text_channel):
                segments.append(
                    (strip.text, (strip.frame_final_start - start) / fps, (strip.frame_final_end - start) / fps)
                )
        if not segments:
            raise InputError("Transcript source is Text Strips, but the sequencer has no text strips there")
        request.transcript_segments = sorted(segments, key=lambda s: s[1])
    request.style_prompt = settings.style_prompt
    request.engine = settings.engine
    request.seed = settings.seed
    return SceneRequest(request, start, source, unpacked)


def check_rig(rig) -> tuple[RigRest, BoneMap]:
    if rig is None:
        raise RigError("No rig selected: pick an armature in the Gesture panel")
    if rig.type != "ARMATURE":
        raise RigError(f"{rig.name!r} is not an armature")
    rest = read_rig_rest(rig)
    return rest, detect_bone_map(rest.names)


def generate_on_rig(
    scene: bpy.types.Scene, settings, progress: Progress | None = None, keep_motion: bool = False
) -> dict:
    """Generate from the scene's settings and key the rig. Returns a summary of plain values (plus
    the canonical motion under "motion" when keep_motion is set).
    Everything that can fail runs before the scene is touched; writing is all-or-nothing."""
    t0 = time.perf_counter()
    rest, bone_map = check_rig(settings.rig)
    scene_request = gather_request(scene, settings)
    try:
        result = generate(scene_request.request, progress)
    finally:
        if scene_request.temporary_audio:
            Path(scene_request.request.audio_path).unlink(missing_ok=True)
    motion = resample_motion(result.motion, scene_fps(scene))
    t_solve = time.perf_counter()
    solved = retarget(motion, rest, bone_map.joints)
    t_write = time.perf_counter()
    rig = settings.rig
    from ..key_properties import key_options  # how keys are written: reduction, NLA per part (scene.gestura_keys)
    action = write_action(rig, solved, bone_map, scene_request.start_frame, f"{rig.name}_gestures",
                          key_options(scene), motion)
    action["gestura_engine"] = scene_request.request.engine
    action["gestura_style"] = scene_request.request.style_prompt
    action["gestura_seed"] = scene_request.request.seed
    action["gestura_source"] = scene_request.source
    t_end = time.perf_counter()
    summary = {
        "action": action.name,
        "rig": rig.name,
        "bone_map": bone_map.describe(),
        "mapped_bones": len(bone_map.joints),
        "frames": motion.num_frames,
        "start_frame": scene_request.start_frame,
        "fps": scene_fps(scene),
        "duration_s": round(motion.duration, 3),
        "words": len(result.words),
        "style": result.style_explanation,
        "warnings": result.warnings,
        "timings_s": {**{k: round(v, 4) for k, v in result.timings.items()},
                      "retarget": round(t_write - t_solve, 4), "write_keys": round(t_end - t_write, 4),
                      "total": round(t_end - t0, 4)},
    }
    if keep_motion:
        summary["motion"] = result.motion
    return summary
