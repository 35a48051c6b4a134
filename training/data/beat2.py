"""BEAT2 takes: SMPL-X `.npz` (+ `wave16k/<name>.wav`, `textgrid/<name>.TextGrid`) -> Samples.

SMPL-X's rest is our canonical convention (T-pose, joint frames aligned with the world, +Y up, faces +Z), so the
local axis-angle rotations become quaternions directly: `poses` holds 55 joints (SMPL-X order) of which jaw and
both eyes (indices 22-24) are dropped, leaving the canonical 52 in order.

Root: SMPL-X's `trans` translates the whole model, whose pelvis joint at rest sits at J0(betas), below the model
origin by a subject-dependent amount we cannot compute without the SMPL-X model files. So the pelvis is
`trans + pelvis_offset`: pass the subject's J0 when known; by default the offset is (0, h, 0) with h chosen so the
clip's median pelvis height is the canonical standing pelvis height (REST_PELVIS_HEIGHT; BEAT2 speakers stand),
which also fits the canonical skeleton's leg length. Horizontal translation is kept as recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...inference.audio import load_audio
from ...inference.motion import CanonicalMotion
from ...inference.rotations import axis_angle_to_quat, quat_make_continuous
from ...inference.skeleton import REST_PELVIS_HEIGHT
from ...inference.transcript import parse_textgrid
from .beat import TARGET_FPS, to_target_fps
from .format import SAMPLE_RATE, Sample, clip_words, split_of

SMPLX_JOINTS = 55
DROPPED = (22, 23, 24)  # jaw, left eye, right eye
KEPT = tuple(j for j in range(SMPLX_JOINTS) if j not in DROPPED)


def _find(npz: Path, folder: str, suffixes: tuple[str, ...]) -> Path | None:
    for base in (npz.parent.parent / folder, npz.parent / folder, npz.parent):
        for suffix in suffixes:
            if (base / (npz.stem + suffix)).exists():
                return base / (npz.stem + suffix)
    return None


def smplx_to_canonical(poses: np.ndarray) -> np.ndarray:
    """(T, 165) SMPL-X axis-angle -> (T, 52, 4) canonical local quaternions (sign-continuous)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != SMPLX_JOINTS * 3:
        raise ValueError(f"poses must be (T, {SMPLX_JOINTS * 3}), got {poses.shape}")
    aa = poses.reshape(-1, SMPLX_JOINTS, 3)[:, KEPT]
    return quat_make_continuous(axis_angle_to_quat(aa))


def read_beat2(npz_path: str | Path, *, pelvis_offset: tuple[float, float, float] | None = None) -> Sample:
    path = Path(npz_path)
    with np.load(path, allow_pickle=False) as data:
        poses, trans = np.asarray(data["poses"]), np.asarray(data["trans"], dtype=np.float64)
        fps = float(data["mocap_frame_rate"]) if "mocap_frame_rate" in data.files else TARGET_FPS
    if trans.shape != (poses.shape[0], 3):
        raise ValueError(f"{path}: trans must be ({poses.shape[0]}, 3), got {trans.shape}")
    quats = smplx_to_canonical(poses)
    if pelvis_offset is None:
        offset = np.array([0.0, REST_PELVIS_HEIGHT - float(np.median(trans[:, 1])) if len(trans) else 0.0, 0.0])
    else:
        offset = np.asarray(pelvis_offset, dtype=np.float64)
    motion = to_target_fps(CanonicalMotion(quats, trans + offset, fps))

    wav = _find(path, "wave16k", (".wav",))
    if wav is None:
        raise FileNotFoundError(f"no wave16k/{path.stem}.wav for {path}")
    audio = load_audio(wav, sample_rate=SAMPLE_RATE)
    n = min(motion.num_frames, int(np.floor(audio.duration * TARGET_FPS + 1e-6)))
    duration = n / TARGET_FPS
    tg = _find(path, "textgrid", (".TextGrid", ".textgrid"))
    parts = path.stem.split("_")
    return Sample(
        rotations=motion.rotations[:n], root=motion.root[:n], audio=audio.samples[: int(round(duration * SAMPLE_RATE))],
        words=clip_words(parse_textgrid(tg), duration) if tg else [], source=path.stem,
        speaker=parts[1] if len(parts) > 1 else "",
        meta={"dataset": "beat2", "source_fps": fps, "pelvis_offset": offset.tolist()},
    )


def official_splits(root: str | Path) -> dict[str, str]:
    """BEAT2's `train_test_split.csv` (rows `id,type`), if the data set has one: take id -> split."""
    path = next(iter(sorted(Path(root).rglob("train_test_split.csv"))), None)
    if path is None:
        return {}
    rows = (line.split(",") for line in path.read_text().splitlines()[1:] if "," in line)
    return {r[0].strip(): r[1].strip() for r in rows}


def iter_beat2(root: str | Path, split: str | None = None) -> Iterator[Sample]:
    """Every BEAT2 take (`*.npz` with `poses`) under `root`: one split (BEAT2's train_test_split.csv where it
    lists the take, else `split_of(stem)`), or all."""
    official = official_splits(root)
    for path in sorted(Path(root).rglob("*.npz")):
        if split and official.get(path.stem, split_of(path.stem)) != split:
            continue
        yield read_beat2(path)
