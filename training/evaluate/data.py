"""Evaluation clips from a procedural corpus split, the style prompt each engine gets for a clip, and
long test speech made of test clips (for the speed figures).

A clip's prompt is its recorded description (the style of its arms, which is the clip's ``style_id``); a
mixed clip (per-part styles, ``part_styles``) adds a section per body-part group whose style differs from
the arms', in the form inference/style.py parses: ``"<arms style description>; head: <description>;
body: <description>"`` ("body" is torso + lower body, the corpus's "torso" mix group). The extra sections'
descriptions come from the same pool as the recorded one (in-vocabulary or held out), chosen from the
clip's seed, so a prompt is the same in every run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...inference.audio import Audio
from ...inference.transcript import Word

FPS = 30.0
SAMPLE_RATE = 16000
# Corpus mix groups (training/corpus/build.py MIX_GROUPS) -> the part keyword of a prompt section.
GROUP_PROMPT_KEY = {"head": "head", "torso": "body", "arms": "arms"}
GROUP_REPRESENTATIVE = {"arms": "left_arm", "head": "head", "torso": "torso"}


@dataclass
class EvalClip:
    """One corpus clip with what an engine needs (audio, timed words, prompt) and its ground truth."""

    index: int
    seed: int
    audio: np.ndarray  # int16, 16 kHz
    words: list[tuple[str, float, float]]
    rotations: np.ndarray  # (T, 52, 4) float32
    root: np.ndarray  # (T, 3) float32
    style_id: int  # the arms' style
    part_styles: dict[str, int]
    mixed: bool
    description: str
    held_out: bool
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.rotations.shape[0])

    def audio_obj(self) -> Audio:
        return Audio(self.audio.astype(np.float32) / 32768.0, SAMPLE_RATE, source=f"corpus clip {self.index}")

    def word_objs(self) -> list[Word]:
        return [Word(str(w), float(s), float(e)) for w, s, e in self.words]

    def group_styles(self) -> dict[str, int]:
        """Style id of each corpus mix group (arms, head, torso)."""
        return {g: int(self.part_styles[p]) for g, p in GROUP_REPRESENTATIVE.items()}


def load_clips(corpus: str | Path, split: str = "test", limit: int | None = None) -> list[EvalClip]:
    """The clips of a split, in corpus order (all of them, or the first ``limit``)."""
    from ..corpus.build import iter_clips

    out: list[EvalClip] = []
    for c in iter_clips(Path(corpus), split):
        out.append(EvalClip(
            index=int(c["index"]), seed=int(c["seed"]), audio=np.asarray(c["audio"]),
            words=[(str(w[0]), float(w[1]), float(w[2])) for w in c["words"]],
            rotations=np.asarray(c["rotations"]), root=np.asarray(c["root"]), style_id=int(c["style_id"]),
            part_styles={k: int(v) for k, v in c["part_styles"].items()}, mixed=bool(c["mixed"]),
            description=str(c["description"]), held_out=bool(c["description_held_out"]),
            seconds=float(c["seconds"]), meta={"text": c.get("text", ""), "voice": c.get("voice", {})},
        ))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ValueError(f"no clips in split {split!r} of {corpus}")
    return out


def style_description(style_id: int, held_out: bool, rng: np.random.Generator) -> str:
    from ...inference.style_catalog import STYLE_CATALOG

    entry = STYLE_CATALOG[style_id]
    pool = entry.held_out if held_out else entry.train_descriptions
    return str(pool[int(rng.integers(len(pool)))])


def clip_prompt(clip: EvalClip) -> str:
    """The style prompt for a clip (see the module docstring)."""
    groups = clip.group_styles()
    sections = [clip.description]
    rng = np.random.default_rng([clip.seed, 7])
    for group in ("head", "torso"):
        if groups[group] != groups["arms"]:
            sections.append(f"{GROUP_PROMPT_KEY[group]}: {style_description(groups[group], clip.held_out, rng)}")
    return "; ".join(sections)


def part_prompt(base: str, group: str, other: str) -> str:
    """``base`` with one mix group's section set to ``other``: "calm teacher; arms: angry"."""
    return f"{base}; {GROUP_PROMPT_KEY[group]}: {other}"


def pick_spread(clips: Sequence[EvalClip], n: int, *, pure_only: bool = False) -> list[EvalClip]:
    """Up to ``n`` clips spread over styles (round-robin over style ids, corpus order inside a style), so
    a small subset still covers many styles and both description pools."""
    pool = [c for c in clips if not (pure_only and c.mixed)]
    by_style: dict[int, list[EvalClip]] = {}
    for c in pool:
        by_style.setdefault(c.style_id, []).append(c)
    out: list[EvalClip] = []
    depth = 0
    while len(out) < min(n, len(pool)):
        added = False
        for sid in sorted(by_style):
            if depth < len(by_style[sid]) and len(out) < n:
                out.append(by_style[sid][depth])
                added = True
        if not added:
            break
        depth += 1
    return sorted(out, key=lambda c: c.index)


@dataclass
class LongSpeech:
    audio: np.ndarray  # float32, 16 kHz
    words: list[tuple[str, float, float]]
    prompt: str
    seconds: float

    def audio_obj(self) -> Audio:
        return Audio(self.audio, SAMPLE_RATE, source=f"{self.seconds:g} s of test speech")

    def word_objs(self) -> list[Word]:
        return [Word(w, s, e) for w, s, e in self.words]


def long_speech(clips: Sequence[EvalClip], seconds: float, gap_s: float = 0.5) -> LongSpeech:
    """``seconds`` of speech: test clips one after another (0.5 s apart) with their word timings, cut at
    ``seconds`` (words that end after the cut are dropped); the prompt is the first clip's."""
    pieces: list[np.ndarray] = []
    words: list[tuple[str, float, float]] = []
    t = 0.0
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    k = 0
    while t < seconds:
        c = clips[k % len(clips)]
        pieces += [c.audio.astype(np.float32) / 32768.0, gap]
        words += [(w, s + t, e + t) for w, s, e in c.words if e + t <= seconds]
        t += (len(c.audio) + len(gap)) / SAMPLE_RATE
        k += 1
    audio = np.concatenate(pieces)[: int(round(seconds * SAMPLE_RATE))]
    return LongSpeech(audio, words, clips[0].description, seconds)


def iter_train_clips(corpus: str | Path) -> Iterator[dict]:
    from ..corpus.build import iter_clips

    yield from iter_clips(Path(corpus), "train")
