"""Gestura without the UI, for pipelines and render farms.

    blender -b scene.blend --python headless.py -- --rig RIG --audio speech.wav \\
        [--transcript speech.srt] [--style "calm teacher"] [--engine diffusion|rule] [--seed 0] \\
        [--strength 2] [--part-strength arms=3 --part-strength head=1] [--style-guidance 1] [--steps 0] \\
        [--start-frame 1] [--out result.blend] [--bvh result.bvh] [--json summary.json]

The same runs with the ``bpy`` module from PyPI:  python headless.py -- --scene scene.blend ...
Instead of --audio, --strip NAME takes a sound strip of the scene (its start and trims are respected);
--text-strips takes the transcript from the sequencer's text strips. The generation runs in this process
(background mode has no UI to keep responsive).

Prints a JSON summary as the last line of standard output. Exit codes: 0 done, 2 bad input (the
message says what to fix), 1 unexpected error. On failure nothing is saved.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import traceback
from pathlib import Path

import bpy

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2
PARTS = ("head", "torso", "arms", "hands", "lower_body")  # the panel's per-part strength sliders
_HERE = Path(__file__).resolve().parent


def _gestura_package():
    """The Gestura package this script belongs to: the enabled extension if Blender loaded it,
    else this folder loaded under the name 'gestura' (a source checkout)."""
    init = str(_HERE / "__init__.py")
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == init:
            return module
    spec = importlib.util.spec_from_file_location("gestura", init, submodule_search_locations=[str(_HERE)])
    if spec is None or spec.loader is None:
        raise RuntimeError(f"Cannot load Gestura from {_HERE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gestura"] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str]) -> argparse.Namespace:
    argv = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(prog="headless.py", description="Generate co-speech gestures on a rig.")
    p.add_argument("--scene", help="a .blend to open first (when running with the bpy module)")
    p.add_argument("--rig", help="armature object name (default: the only armature in the scene)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="speech audio file (wav, flac, ogg, mp3)")
    src.add_argument("--strip", help="name of a sound strip in the scene's sequencer")
    txt = p.add_mutually_exclusive_group()
    txt.add_argument("--transcript", help="plain text (English, aligned automatically), .srt, .vtt or .TextGrid")
    txt.add_argument("--text-strips", action="store_true", help="use the sequencer's text strips as transcript")
    p.add_argument("--style", default="", help="style prompt, e.g. 'excited keynote speaker'")
    p.add_argument("--engine", default="diffusion",
                   help="generation engine: diffusion (needs torch) or rule (default: diffusion, as the panel)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strength", type=float, default=2.0, help="diffusion: style strength, 0-6 (default 2)")
    p.add_argument("--part-strength", action="append", default=[], metavar="PART=VALUE",
                   help=f"diffusion: one part's style strength ({', '.join(PARTS)}); repeatable")
    p.add_argument("--steps", type=int, default=0, help="diffusion: sampler steps (default 0: the model's)")
    p.add_argument("--style-guidance", type=float, default=1.0,
                   help="diffusion: style guidance, 0-4 (default 1, as the panel; 0: off)")
    p.add_argument("--start-frame", type=int, default=None, help="first frame for --audio (default: scene start)")
    p.add_argument("--out", help="save the result to this .blend")
    p.add_argument("--bvh", help="also write the canonical motion as BVH")
    p.add_argument("--json", help="also write the summary to this file")
    return p.parse_args(argv)


def _pick_rig(name: str | None):
    from_scene = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise LookupError(f"No object named {name!r}; armatures in the scene: {[o.name for o in from_scene]}")
        return obj
    if len(from_scene) != 1:
        raise LookupError(f"Name the rig with --rig; armatures in the scene: {[o.name for o in from_scene]}")
    return from_scene[0]


def _set_checked(settings, name: str, value: float, flag: str) -> None:
    """Set a number, refusing what Blender's property would silently clamp (or a nan); ``flag`` names it."""
    prop = settings.bl_rna.properties[name]
    if not math.isfinite(value) or not prop.hard_min <= value <= prop.hard_max:
        raise LookupError(f"{flag}{value:g}: the value is between {prop.hard_min:g} and {prop.hard_max:g}")
    setattr(settings, name, value)


def _set_strengths(settings, args: argparse.Namespace) -> None:
    _set_checked(settings, "style_strength", args.strength, "--strength ")
    _set_checked(settings, "sampler_steps", args.steps, "--steps ")
    _set_checked(settings, "style_guidance", args.style_guidance, "--style-guidance ")
    parts = {}
    for item in args.part_strength:
        name, _, value = item.partition("=")
        if name.strip() not in PARTS:
            raise LookupError(f"--part-strength {item!r}: the part is one of {', '.join(PARTS)}")
        try:
            parts[name.strip()] = float(value)
        except ValueError:
            raise LookupError(f"--part-strength {item!r}: the value is a number, e.g. arms=3") from None
    settings.use_part_strength = bool(parts)
    for name in PARTS:
        flag = f"--part-strength {name}=" if name in parts else "--strength "
        _set_checked(settings, f"strength_{name}", parts.get(name, args.strength), flag)


def run(args: argparse.Namespace) -> dict:
    gestura = _gestura_package()
    if args.scene:
        bpy.ops.wm.open_mainfile(filepath=str(Path(args.scene).resolve()))
    if not hasattr(bpy.types.Scene, "gestura"):
        gestura.register()
    from_inputs = importlib.import_module(gestura.__name__ + ".operators.scene_inputs")

    scene = bpy.context.scene
    settings = scene.gestura
    settings.rig = _pick_rig(args.rig)
    if args.audio:
        settings.audio_source = "FILE"
        settings.audio_file = str(Path(args.audio).resolve())
        settings.start_frame = args.start_frame if args.start_frame is not None else scene.frame_start
    else:
        settings.audio_source = "STRIP"
        settings.sound_strip = args.strip
    if args.transcript:
        settings.transcript_source = "FILE"
        settings.transcript_file = str(Path(args.transcript).resolve())
    elif args.text_strips:
        settings.transcript_source = "TEXT_STRIPS"
    else:
        settings.transcript_source = "NONE"
    settings.style_prompt = args.style
    engines = importlib.import_module(gestura.__name__ + ".inference.pipeline").ENGINES
    if args.engine not in engines:
        raise LookupError(f"Unknown engine {args.engine!r}; available: {', '.join(engines)}")
    settings.engine = args.engine
    settings.seed = args.seed
    _set_strengths(settings, args)

    summary = from_inputs.generate_on_rig(scene, settings, keep_motion=bool(args.bvh))
    motion = summary.pop("motion", None)
    if args.bvh and motion is not None:
        bvh = importlib.import_module(gestura.__name__ + ".inference.bvh")
        bvh.write_bvh(motion, str(Path(args.bvh).resolve()))
        summary["bvh"] = str(Path(args.bvh).resolve())
    if args.out:
        out = str(Path(args.out).resolve())
        bpy.ops.wm.save_as_mainfile(filepath=out)
        summary["blend"] = out
    return summary


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage
        return EXIT_BAD_INPUT if exc.code else EXIT_OK
    errors_module = None
    try:
        gestura = _gestura_package()
        errors_module = importlib.import_module(gestura.__name__ + ".inference.errors")
        summary = run(args)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a clear message and an exit code
        bad_input = isinstance(exc, LookupError) or (
            errors_module is not None and isinstance(exc, errors_module.GesturaError)
        )
        if not bad_input:
            traceback.print_exc()
        message = str(exc) or type(exc).__name__
        print(f"Gestura: error: {message}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": message}))
        return EXIT_BAD_INPUT if bad_input else EXIT_ERROR
    summary = {"ok": True, **summary}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return EXIT_OK


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if Path(sys.argv[0]).resolve() == Path(__file__).resolve():
        # Run as `python headless.py` with the bpy module: bpy 4.5 can hang in its own shutdown, so
        # leave at once (the result is already saved). Inside Blender, exit the normal way.
        os._exit(code)
    sys.exit(code)
