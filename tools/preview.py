"""Previews a person can look at: the rig's own deforming bones, as Blender poses them, drawn front and
side with the speech waveform and the word being spoken (dev tool; needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np


def _deform_segments(rig: bpy.types.Object) -> tuple[list[str], np.ndarray]:
    bones = [b.name for b in rig.data.bones if b.use_deform] or [b.name for b in rig.data.bones]
    world = np.array(rig.matrix_world)
    segs = []
    for name in bones:
        pb = rig.pose.bones[name]
        m = world @ np.array(pb.matrix)
        head = m[:3, 3]
        tail = (m @ np.array([0.0, rig.data.bones[name].length, 0.0, 1.0]))[:3]
        segs.append((head, tail))
    return bones, np.array(segs)


def _words(srt: Path | None) -> list[tuple[float, float, str]]:
    if srt is None or not srt.exists():
        return []
    import srt as srt_lib

    return [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt_lib.parse(srt.read_text())]


def render_rig_preview(scene, rig, wav: Path, srt: Path | None, out: Path, fps_out: float = 15.0) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf
    from matplotlib.animation import PillowWriter

    fps = scene.render.fps / scene.render.fps_base
    frames = list(range(scene.frame_start, scene.frame_end + 1, max(1, round(fps / fps_out))))
    poses = []
    for f in frames:
        scene.frame_set(f)
        poses.append(_deform_segments(rig)[1])
    poses_arr = np.array(poses)  # (F, bones, 2, 3)
    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    t_audio = np.arange(len(audio)) / sr
    captions = _words(srt)

    lo = poses_arr.reshape(-1, 3).min(0)
    hi = poses_arr.reshape(-1, 3).max(0)
    centre = (lo + hi) / 2
    half = (hi - lo).max() / 2 * 1.1

    fig = plt.figure(figsize=(8, 6), dpi=80)
    grid = fig.add_gridspec(2, 2, height_ratios=[5, 1])
    ax_front, ax_side, ax_wave = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    ax_wave.plot(t_audio[::20], audio[::20], lw=0.5, color="0.4")
    ax_wave.set_xlim(0, t_audio[-1])
    ax_wave.set_yticks([])
    ax_wave.set_xlabel("seconds")
    marker = ax_wave.axvline(0, color="crimson")
    lines_front = [ax_front.plot([], [], lw=2, color="tab:blue")[0] for _ in range(poses_arr.shape[1])]
    lines_side = [ax_side.plot([], [], lw=2, color="tab:orange")[0] for _ in range(poses_arr.shape[1])]
    for ax, (a, b), title in ((ax_front, (0, 2), "front"), (ax_side, (1, 2), "side")):
        ax.set_xlim(centre[a] - half, centre[a] + half)
        ax.set_ylim(centre[b] - half, centre[b] + half)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
    caption = fig.suptitle("")

    def draw(i: int) -> None:
        t = (frames[i] - scene.frame_start) / fps
        for k, seg in enumerate(poses_arr[i]):
            lines_front[k].set_data(seg[:, 0], seg[:, 2])
            lines_side[k].set_data(-seg[:, 1], seg[:, 2])
        marker.set_xdata([t, t])
        spoken = [c for s, e, c in captions if s <= t <= e]
        caption.set_text(spoken[0] if spoken else "")

    gif = out / "preview.gif"
    writer = PillowWriter(fps=fps_out)
    with writer.saving(fig, str(gif), dpi=80):
        for i in range(len(frames)):
            draw(i)
            writer.grab_frame()
    plt.close(fig)

    # Contact sheet: ten moments across the clip, front view.
    picks = np.linspace(0, len(frames) - 1, 10).astype(int)
    sheet, axes = plt.subplots(2, 5, figsize=(12, 6), dpi=80)
    for ax, i in zip(axes.ravel(), picks, strict=True):
        for seg in poses_arr[i]:
            ax.plot(seg[:, 0], seg[:, 2], lw=2, color="tab:blue")
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[2] - half, centre[2] + half)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        t = (frames[i] - scene.frame_start) / fps
        spoken = [c for s, e, c in captions if s <= t <= e]
        ax.set_title(f"{t:.1f} s" + (f"\n{spoken[0][:28]}" if spoken else "\n(pause)"), fontsize=8)
    sheet.tight_layout()
    png = out / "contact_sheet.png"
    sheet.savefig(png)
    plt.close(sheet)
    return {"gif": gif, "contact_sheet": png}
