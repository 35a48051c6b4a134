"""Benchmark: Generate Gestures on 30 s of speech onto a Rigify rig, and key writing against a
keyframe_insert loop on the same data (both measured in this run).

    .venv/bin/python tools/bench_generate.py [--seconds 30] [--repeats 3]

Prints the figures and a JSON line. Timings are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import devload
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "examples" / "speech"


def long_speech(seconds: float, folder: Path) -> tuple[Path, Path]:
    """The example speech repeated with short pauses up to `seconds`, and a matching SRT."""
    import soundfile as sf
    import srt

    data, sr = sf.read(SPEECH / "hello.wav", dtype="float32")
    cues = list(srt.parse((SPEECH / "hello.srt").read_text()))
    gap = np.zeros(int(0.8 * sr), np.float32)
    pieces, out_cues, t = [], [], 0.0
    while t < seconds:
        pieces += [data, gap]
        for c in cues:
            out_cues.append(srt.Subtitle(len(out_cues) + 1, c.start + _td(t), c.end + _td(t), c.content))
        t += (len(data) + len(gap)) / sr
    audio = np.concatenate(pieces)[: int(seconds * sr)]
    wav, sub = folder / "speech.wav", folder / "speech.srt"
    sf.write(wav, audio, sr)
    sub.write_text(srt.compose([c for c in out_cues if c.end.total_seconds() <= seconds]))
    return wav, sub


def _td(seconds: float):
    import datetime

    return datetime.timedelta(seconds=seconds)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import bpy

    gestura = devload.load_gestura()
    import testrigs

    from gestura.inference.motion import resample_motion
    from gestura.inference.pipeline import GenerationRequest, generate
    from gestura.retarget.blender_rig import KeyOptions, read_rig_rest, write_action
    from gestura.retarget.bonemaps import detect_bone_map
    from gestura.retarget.channels import rotation_channels
    from gestura.retarget.solve import retarget

    tmp = Path(tempfile.mkdtemp(prefix="gestura_bench_"))
    wav, sub = long_speech(args.seconds, tmp)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    gestura.register()
    scene = bpy.context.scene
    scene.render.fps = 30
    rig = testrigs.append_rigify_rig()
    strip = testrigs.add_sound_strip(scene, wav)
    s = scene.gestura
    s.rig, s.audio_source, s.sound_strip = rig, "STRIP", strip.name
    s.transcript_source, s.transcript_file = "FILE", str(sub)

    # 1. Operator call to keys, end to end.
    op_times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        assert bpy.ops.gestura.generate() == {"FINISHED"}
        op_times.append(time.perf_counter() - t)
    from gestura.operators.scene_inputs import generate_on_rig

    stages = generate_on_rig(scene, s)["timings_s"]

    # 2. Key writing: our F-curve path against keyframe_insert, on the same solved data.
    request = GenerationRequest(audio_path=str(wav), transcript_path=str(sub))
    motion = resample_motion(generate(request).motion, 30.0)
    rest = read_rig_rest(rig)
    bone_map = detect_bone_map(rest.names)
    solved = retarget(motion, rest, bone_map.joints)
    n_keys = sum(q.shape[0] * 4 for q in solved.rotations.values()) + 3 * motion.num_frames
    fast = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        write_action(rig, solved, bone_map, 1, "bench_fast", KeyOptions(max_angle_deg=0.0, max_distance=0.0))
        fast.append(time.perf_counter() - t)

    rig.animation_data.action = bpy.data.actions.new("bench_slow")
    channels = {b: rotation_channels(q, rig.pose.bones[b].rotation_mode) for b, q in solved.rotations.items()}
    t = time.perf_counter()
    for f in range(motion.num_frames):
        for bone, (prop, values) in channels.items():
            pb = rig.pose.bones[bone]
            setattr(pb, prop, values[f])
            pb.keyframe_insert(prop, frame=1 + f, group=bone)
        pb = rig.pose.bones[solved.root_bone]
        pb.location = solved.root_location[f]
        pb.keyframe_insert("location", frame=1 + f, group=solved.root_bone)
    slow = time.perf_counter() - t

    result = {
        "speech_s": args.seconds,
        "rig_bones": len(rig.data.bones),
        "mapped_bones": len(bone_map.joints),
        "keys": n_keys,
        "operator_to_keys_s": round(statistics.median(op_times), 4),
        "real_time_factor": round(args.seconds / statistics.median(op_times), 1),
        "stages_s": stages,
        "write_keys_fcurve_s": round(statistics.median(fast), 4),
        "write_keys_keyframe_insert_s": round(slow, 4),
        "keyframe_insert_over_fcurve": round(slow / statistics.median(fast), 1),
        "blender": bpy.app.version_string,
    }
    print(f"Generate Gestures, {args.seconds:.0f} s of speech onto Rigify ({len(rig.data.bones)} bones): "
          f"{result['operator_to_keys_s']:.3f} s operator call to keys ({result['real_time_factor']}x real time)")
    print(f"  stages: {stages}")
    print(f"Key writing, {n_keys} keys on {len(solved.rotations)} bones: F-curve path "
          f"{result['write_keys_fcurve_s'] * 1000:.1f} ms vs keyframe_insert loop {slow:.2f} s "
          f"-> {result['keyframe_insert_over_fcurve']}x faster")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
