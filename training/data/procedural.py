"""The procedural corpus (`training/corpus`) as Samples: a thin view over `iter_clips`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...inference.transcript import Word
from ..corpus.build import iter_clips
from .format import Sample


def clip_to_sample(clip: dict) -> Sample:
    voice = clip.get("voice") or {}
    return Sample(
        rotations=clip["rotations"],
        root=clip["root"],
        audio=np.asarray(clip["audio"], dtype=np.float32) / 32767.0,  # int16 PCM
        words=[Word(str(t), float(s), float(e)) for t, s, e in clip["words"]],
        source=f"procedural/{clip['split']}/{int(clip['index']):06d}",
        speaker=str(voice.get("name", "")) if isinstance(voice, dict) else str(voice),
        style_id=int(clip["style_id"]),
        part_style_ids=tuple(int(i) for i in np.asarray(clip["part_style_ids"]).reshape(-1)),
        meta={"split": clip["split"], "text": clip.get("text", ""), "description": clip.get("description", ""),
              "mixed": bool(clip.get("mixed", False))},
    )


def iter_procedural(corpus_dir: str | Path, split: str | None = None) -> Iterator[Sample]:
    """Every clip of a built corpus (one split, or all) as a Sample; the corpus's own splits are kept."""
    for clip in iter_clips(Path(corpus_dir), split):
        yield clip_to_sample(clip)
