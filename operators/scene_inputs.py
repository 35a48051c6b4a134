"""Between the Blender scene and the core: gather a generation request from the scene's settings, and land
the result on the rig. Shared by the operator (through the worker process, GenerationJob) and the headless
script and background mode (in this process, generate_on_rig).

Two halves, so both paths share them: prepare_generation() (scene -> checked request, nothing touched) and
write_motion() (canonical motion -> a new action on the rig, all or nothing).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..inference.errors import GesturaError, InputError, RigError
from ..inference.motion import resample_motion
from ..inference.pipeline import EngineOptions, GenerationRequest, GenerationResult, Progress, generate
from ..retarget.blender_rig import read_rig_rest, write_action
from ..retarget.bonemaps import BoneMap
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


def engine_options(settings) -> EngineOptions:
    """The diffusion engine's options from the panel (the rule-based engine ignores them)."""
    part_strength: dict[str, float] = {}
    if settings.use_part_strength:
        part_strength = {
            "head": settings.strength_head,
            "torso": settings.strength_torso,
            "left_arm": settings.strength_arms,
            "right_arm": settings.strength_arms,
            "left_hand": settings.strength_hands,
            "right_hand": settings.strength_hands,
            "lower_body": settings.strength_lower_body,
        }
    return EngineOptions(part_strength=part_strength, strength=settings.style_strength, steps=settings.sampler_steps,
                         style_guidance=settings.style_guidance)


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
    try:
        _complete_request(scene, settings, request, start, fps)
    except BaseException:
        if unpacked:
            Path(request.audio_path).unlink(missing_ok=True)
        raise
    return SceneRequest(request, start, source, unpacked)


def _complete_request(scene: bpy.types.Scene, settings, request: GenerationRequest, start: float, fps: float) -> None:
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
    request.options = engine_options(settings)


def check_rig(rig) -> tuple[RigRest, BoneMap]:
    if rig is None:
        raise RigError("No rig selected: pick an armature in the Gesture panel")
    if rig.type != "ARMATURE":
        raise RigError(f"{rig.name!r} is not an armature")
    rest = read_rig_rest(rig)
    from ..retarget.detect_blender import rig_bone_map  # the rig's manual mapping when set, else detection

    return rest, rig_bone_map(rig, rest)


@dataclass
class PreparedGeneration:
    """A checked request and where its result goes. Holds names and session ids, never bpy references, so it
    stays valid while the user keeps working (undo, renames, deletions) during a generation."""

    scene_request: SceneRequest
    scene_uid: int
    rig_uid: int
    rig_name: str
    started: float = field(default_factory=time.perf_counter)

    @property
    def request(self) -> GenerationRequest:
        return self.scene_request.request

    def release(self) -> None:
        """Removes the temporary audio file a packed sound was unpacked to (once the audio has been read)."""
        if self.scene_request.temporary_audio:
            Path(self.scene_request.request.audio_path).unlink(missing_ok=True)
            self.scene_request.temporary_audio = False


def prepare_generation(scene: bpy.types.Scene, settings) -> PreparedGeneration:
    """Everything that can be checked before generating: the rig (and that its bones map), the audio and
    transcript, the settings. Raises GesturaError; touches nothing."""
    check_rig(settings.rig)
    scene_request = gather_request(scene, settings)
    return PreparedGeneration(scene_request, scene.session_uid, settings.rig.session_uid, settings.rig.name)


def _by_session_uid(collection, uid: int):
    return next((item for item in collection if item.session_uid == uid), None)


def resolve_rig(prepared: PreparedGeneration) -> bpy.types.Object:
    """The rig the generation was started for, as it is now; an error when it was deleted or renamed."""
    rig = _by_session_uid(bpy.data.objects, prepared.rig_uid)
    if rig is None:
        raise RigError(f"The rig {prepared.rig_name!r} was deleted while the gestures were generated: "
                       "nothing was written")
    if rig.name != prepared.rig_name:
        raise RigError(f"The rig {prepared.rig_name!r} was renamed to {rig.name!r} while the gestures were "
                       "generated: nothing was written; generate again")
    return rig


def write_motion(prepared: PreparedGeneration, result: GenerationResult, keep_motion: bool = False) -> dict:
    """Lands a generated motion on the rig as a new action (one undo step is the caller's: the operator).
    Returns a summary of plain values (plus the canonical motion under "motion" when keep_motion is set).
    Everything that can fail runs before the scene is touched; writing is all-or-nothing."""
    scene = _by_session_uid(bpy.data.scenes, prepared.scene_uid)
    if scene is None:
        raise InputError("The scene was deleted while the gestures were generated: nothing was written")
    rig = resolve_rig(prepared)
    rest, bone_map = check_rig(rig)  # the rig as it is now
    scene_request = prepared.scene_request
    motion = resample_motion(result.motion, scene_fps(scene))
    t_solve = time.perf_counter()
    solved = retarget(motion, rest, bone_map)  # the BoneMap carries its root-motion switch
    t_write = time.perf_counter()
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
        "engine": scene_request.request.engine,
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
                      "total": round(t_end - prepared.started, 4)},
    }
    if keep_motion:
        summary["motion"] = result.motion
    return summary


def generate_on_rig(
    scene: bpy.types.Scene, settings, progress: Progress | None = None, keep_motion: bool = False
) -> dict:
    """Generate from the scene's settings in this process and key the rig (background mode, headless
    script, tools). Returns write_motion()'s summary."""
    prepared = prepare_generation(scene, settings)
    try:
        result = generate(prepared.request, progress)
    finally:
        prepared.release()
    return write_motion(prepared, result, keep_motion)


class GenerationJob:
    """One generation through the worker process, driven without an event loop: start() checks the inputs
    and sends the request; poll() never blocks and returns the state ("running", "done", "failed",
    "cancelled"), with progress in .fraction and .text; cancel() stops at once (the worker is killed,
    nothing is written); finish() lands a done job's motion on the rig, or raises the failed job's error.
    The modal operator calls poll() from a timer; tests and scripts can call wait()."""

    def __init__(self, client) -> None:
        self.client = client  # inference.worker_client.WorkerClient
        self.state = "idle"
        self.fraction = 0.0
        self.text = ""
        self.prepared: PreparedGeneration | None = None
        self.result: GenerationResult | None = None
        self.error: BaseException | None = None
        self.job_id: int | None = None

    def start(self, scene: bpy.types.Scene, settings) -> None:
        if self.state != "idle":
            raise RuntimeError("A GenerationJob runs once")
        prepared = prepare_generation(scene, settings)
        starting = not self.client.alive()
        try:
            self.job_id = self.client.submit(prepared.request)
        except BaseException:
            prepared.release()
            raise
        self.prepared = prepared
        self.state = "running"
        self.text = "Starting the model process" if starting else "Waiting for the model process"

    def poll(self, timeout: float = 0.0) -> str:
        from ..inference.worker_client import ErrorEvent, ProgressEvent, ResultEvent

        if self.state != "running":
            return self.state
        for event in self.client.poll(timeout):
            if event.job != self.job_id:
                continue
            if isinstance(event, ProgressEvent):
                self.fraction, self.text = event.fraction, event.text
            elif isinstance(event, ResultEvent):
                self.result, self.state, self.fraction = event.result, "done", 1.0
            elif isinstance(event, ErrorEvent):
                self.error, self.state = event.error, "failed"
        if self.state == "running" and self.client.current_job != self.job_id:
            self.state = "cancelled"  # the worker was cancelled or replaced from elsewhere
        if self.state != "running" and self.prepared is not None:
            self.prepared.release()
        return self.state

    def wait(self, timeout: float | None = None) -> str:
        """Blocks until the job ends (scripts and tests; the UI polls instead)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while self.poll(0.1) == "running":
            if deadline is not None and time.perf_counter() > deadline:
                self.cancel()
                raise TimeoutError(f"The generation did not finish within {timeout} s")
        return self.state

    def cancel(self) -> None:
        if self.state == "running":
            self.client.cancel()
            self.state = "cancelled"
        if self.prepared is not None:
            self.prepared.release()

    def finish(self, keep_motion: bool = False) -> dict:
        if self.state == "failed":
            assert self.error is not None
            raise self.error
        if self.state == "cancelled":
            raise GesturaError("The generation was cancelled: nothing was written")
        if self.state != "done" or self.result is None or self.prepared is None:
            raise RuntimeError(f"The job cannot be finished in state {self.state!r}")
        summary = write_motion(self.prepared, self.result, keep_motion)
        self.state = "finished"
        return summary
