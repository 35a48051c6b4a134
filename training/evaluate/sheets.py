"""Side-by-side pictures a person can look at: stick figures of the canonical skeleton (front view,
inference/skeleton.py forward_kinematics) of the same clip under several variants, at the same moments,
with the words being spoken; and an animated GIF of one clip (matplotlib's Pillow writer, no extra
dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import FPS, EvalClip

_COLOURS = ("0.25", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def _positions(rot: np.ndarray, root: np.ndarray) -> np.ndarray:
    from ...inference.skeleton import forward_kinematics

    return forward_kinematics(np.asarray(rot, np.float64), np.asarray(root, np.float64))[1]


def _draw(ax: Any, pos: np.ndarray, colour: str) -> None:
    from ...inference.skeleton import PARENTS

    for j, p in enumerate(PARENTS):
        if p >= 0:
            ax.plot(pos[[p, j], 0], pos[[p, j], 1], color=colour, lw=1.4, solid_capstyle="round")


def _frame_axes(ax: Any, centre_x: float) -> None:
    ax.set_xlim(centre_x - 0.8, centre_x + 0.8)
    ax.set_ylim(0.0, 1.9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _spoken(clip: EvalClip, t: float) -> str:
    return " ".join(w for w, s, e in clip.words if s <= t <= e + 0.2)


def contact_sheet(path: Path, clip: EvalClip, rows: Sequence[tuple[str, np.ndarray, np.ndarray]],
                  title: str, poses: int = 8) -> Path:
    """One clip, one row per variant (label, rotations, root), ``poses`` moments spread over the clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(r[1]) for r in rows)
    times = np.linspace(0, n - 1, poses + 2)[1:-1].astype(int)
    fig, axes = plt.subplots(len(rows), poses, figsize=(1.6 * poses, 2.3 * len(rows)), squeeze=False)
    for r, (label, rot, root) in enumerate(rows):
        pos = _positions(rot[:n], root[:n])
        cx = float(np.median(pos[:, 0, 0]))
        for c, t in enumerate(times):
            ax = axes[r, c]
            _draw(ax, pos[t], _COLOURS[r % len(_COLOURS)])
            _frame_axes(ax, cx)
            if r == 0:
                ax.set_title(f"{t / FPS:.1f}s {_spoken(clip, t / FPS)[:16]}", fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def side_by_side_gif(path: Path, clip: EvalClip, rows: Sequence[tuple[str, np.ndarray, np.ndarray]],
                     seconds: float = 8.0, fps_out: int = 10) -> Path:
    """The first ``seconds`` of a clip, variants side by side, as an animated GIF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    from ...inference.skeleton import PARENTS

    n = min(*(len(r[1]) for r in rows), int(seconds * FPS))
    step = max(1, round(FPS / fps_out))
    frames = list(range(0, n, step))
    poss = [_positions(rot[:n], root[:n]) for _, rot, root in rows]
    fig, axes = plt.subplots(1, len(rows), figsize=(2.0 * len(rows), 2.6), squeeze=False)
    lines = []
    for k, (ax, (label, _, _)) in enumerate(zip(axes[0], rows, strict=True)):
        _frame_axes(ax, float(np.median(poss[k][:, 0, 0])))
        ax.set_title(label, fontsize=8)
        lines.append([ax.plot([], [], color=_COLOURS[k % len(_COLOURS)], lw=1.5)[0] for p in PARENTS if p >= 0])
    caption = fig.suptitle("", fontsize=8)
    pairs = [(p, j) for j, p in enumerate(PARENTS) if p >= 0]
    writer = PillowWriter(fps=fps_out)
    with writer.saving(fig, str(path), dpi=60):
        for f in frames:
            for k, pos in enumerate(poss):
                for line, (p, j) in zip(lines[k], pairs, strict=True):
                    line.set_data(pos[f, [p, j], 0], pos[f, [p, j], 1])
            caption.set_text(f"{f / FPS:4.1f} s  {_spoken(clip, f / FPS)[:40]}")
            writer.grab_frame()
    plt.close(fig)
    return path
