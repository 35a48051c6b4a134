"""Builds the procedural speech-gesture corpus: espeak-ng speech with exact word timings, motion from
the rule-based engine in one of the catalogue's styles (or a per-body-part mix of them).

Deterministic for a seed, whatever the number of worker processes: every clip is planned up front from
the master seed (text, voice, style, split, its own seed), and each shard is rendered and written by
one process from its plan alone.

Layout of a corpus folder:
    manifest.json                      settings, seed, style catalogue, splits, shard list with sha256
    <split>/shard_00000.safetensors    motion and audio of up to `clips_per_shard` clips (see ShardArrays)
    <split>/shard_00000.json           per-clip metadata: text, word timings, voice, styles, description
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .speech import Synthesizer

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
# Body-part groups a mixed clip may style differently (a hand always goes with its arm).
MIX_GROUPS: dict[str, tuple[str, ...]] = {
    "arms": ("left_arm", "right_arm", "left_hand", "right_hand"),
    "head": ("head",),
    "torso": ("torso", "lower_body"),
}
PART_ORDER = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CorpusSettings:
    hours: float = 1.0
    seed: int = 0
    clip_seconds: tuple[float, float] = (6.0, 18.0)
    clips_per_shard: int = 48
    mix_fraction: float = 0.25  # clips whose body parts take different styles
    fps: float = 30.0
    sample_rate: int = 16000


@dataclass
class ClipPlan:
    index: int
    seed: int
    split: str
    sentences: tuple[str, ...]
    voice: dict
    part_styles: dict[str, int]  # body part -> style id
    description: str
    description_held_out: bool

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def style_id(self) -> int:
        """The clip's style: the arms' style, which dominates what a viewer reads."""
        return self.part_styles["left_arm"]

    @property
    def is_mixed(self) -> bool:
        return len(set(self.part_styles.values())) > 1


def sentence_split(sentence: str) -> str:
    """Which split a sentence belongs to, from a hash of its text: a sentence never crosses splits."""
    h = int.from_bytes(hashlib.sha256(sentence.strip().lower().encode()).digest()[:8], "little") / 2**64
    edges = np.cumsum(SPLIT_FRACTIONS)
    return SPLITS[int(np.searchsorted(edges, h, side="right"))]


def _passage_for_split(rng: np.random.Generator, split: str, target_s: float, wpm: float) -> tuple[str, ...]:
    from .sentences import make_sentence

    words_needed = max(4, int(target_s * wpm / 60.0))
    sentences: list[str] = []
    count = 0
    while count < words_needed:
        s = make_sentence(rng)
        if sentence_split(s) != split:
            continue  # rejection keeps every sentence of this clip inside the clip's split
        sentences.append(s)
        count += len(s.split())
    return tuple(sentences)


def plan_corpus(settings: CorpusSettings) -> list[ClipPlan]:
    """Every clip of the corpus, decided from the master seed before anything is rendered."""
    from ...inference.style_catalog import STYLE_CATALOG
    from .sentences import estimate_seconds
    from .speech import random_voice

    rng = np.random.default_rng(settings.seed)
    target_total = settings.hours * 3600.0
    planned = 0.0
    plans: list[ClipPlan] = []
    n_styles = len(STYLE_CATALOG)
    while planned < target_total:
        i = len(plans)
        split = SPLITS[int(rng.choice(len(SPLITS), p=SPLIT_FRACTIONS))]
        voice = random_voice(rng)
        target_s = float(rng.uniform(*settings.clip_seconds))
        sentences = _passage_for_split(rng, split, target_s, voice.rate_wpm)
        base = int(rng.integers(n_styles))
        parts = dict.fromkeys(PART_ORDER, base)
        if rng.random() < settings.mix_fraction:
            groups = list(MIX_GROUPS)
            changed = rng.choice(len(groups), size=int(rng.integers(1, len(groups))), replace=False)
            for g in changed:
                other = int(rng.integers(n_styles - 1))
                other += other >= base  # a different style
                for part in MIX_GROUPS[groups[g]]:
                    parts[part] = other
        entry = STYLE_CATALOG[parts["left_arm"]]
        use_held_out = split == "test" and rng.random() < 0.5
        pool = entry.held_out if use_held_out else entry.train_descriptions
        description = str(pool[int(rng.integers(len(pool)))])
        plans.append(ClipPlan(i, int(rng.integers(2**31)), split, sentences, asdict(voice), parts, description,
                              use_held_out))
        planned += estimate_seconds(plans[-1].text, voice.rate_wpm)
    return plans


@dataclass
class RenderedClip:
    plan: ClipPlan
    audio: np.ndarray  # int16, 16 kHz
    rotations: np.ndarray  # (T, 52, 4) float32
    root: np.ndarray  # (T, 3) float32
    words: list[tuple[str, float, float]]
    events: list[dict] = field(default_factory=list)


def render_clip(plan: ClipPlan, synth: Synthesizer) -> RenderedClip:
    from ...inference.audio import Audio, audio_features
    from ...inference.rule_engine import generate_rule_based
    from ...inference.style import PartStyles, StyleParams
    from ...inference.style_catalog import STYLE_CATALOG
    from .speech import Voice

    utt = synth.speak(plan.text, Voice(**plan.voice))
    audio = Audio(utt.samples, utt.sample_rate, source=f"clip {plan.index}")
    features = audio_features(audio)
    base = STYLE_CATALOG[plan.style_id].params
    style: StyleParams | PartStyles = base
    if plan.is_mixed:
        style = PartStyles(default=base, **{p: STYLE_CATALOG[s].params for p, s in plan.part_styles.items()})
    motion = generate_rule_based(features, utt.words, style, seed=plan.seed)
    pcm = np.clip(np.round(utt.samples * 32767.0), -32768, 32767).astype(np.int16)
    events = [_plain(e) for e in motion.meta.get("events", [])]
    return RenderedClip(
        plan, pcm, motion.rotations.astype(np.float32), motion.root.astype(np.float32),
        [(w.text, round(float(w.start), 4), round(float(w.end), 4)) for w in utt.words], events,
    )


def _plain(value: Any) -> Any:
    """JSON-safe, rounded copy of engine metadata (numpy scalars and arrays included)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value


def write_shard(clips: list[RenderedClip], path: Path) -> str:
    """Write one shard (safetensors + JSON sidecar); returns the sha256 of the tensor file."""
    from safetensors.numpy import save_file

    frames = np.cumsum([0] + [c.rotations.shape[0] for c in clips]).astype(np.int64)
    samples = np.cumsum([0] + [c.audio.shape[0] for c in clips]).astype(np.int64)
    tensors = {
        "rotations": np.concatenate([c.rotations for c in clips]),
        "root": np.concatenate([c.root for c in clips]),
        "audio": np.concatenate([c.audio for c in clips]),
        "frame_offsets": frames,
        "sample_offsets": samples,
        "style_ids": np.array([c.plan.style_id for c in clips], dtype=np.int32),
        "part_style_ids": np.array([[c.plan.part_styles[p] for p in PART_ORDER] for c in clips], dtype=np.int32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": f"gestura-corpus-{FORMAT_VERSION}"})
    os.replace(tmp, path)
    meta = [
        {
            "index": c.plan.index, "seed": c.plan.seed, "split": c.plan.split, "text": c.plan.text,
            "sentences": list(c.plan.sentences),
            "voice": c.plan.voice, "style_id": c.plan.style_id,
            "part_styles": {p: c.plan.part_styles[p] for p in PART_ORDER}, "mixed": c.plan.is_mixed,
            "description": c.plan.description, "description_held_out": c.plan.description_held_out,
            "words": c.words, "events": c.events,
            "frames": int(c.rotations.shape[0]), "seconds": round(c.audio.shape[0] / 16000.0, 4),
        }
        for c in clips
    ]
    path.with_suffix(".json").write_text(json.dumps(meta, sort_keys=True, separators=(",", ":")))
    return hashlib.sha256(path.read_bytes()).hexdigest()


# One synthesizer per worker process: espeak-ng keeps global state and is not thread-safe.
_WORKER: dict[str, Synthesizer] = {}


def _worker_init() -> None:
    from .speech import Synthesizer

    _WORKER["synth"] = Synthesizer()


def _render_shard(job: tuple[Path, str, list[ClipPlan]]) -> tuple[str, str, int, float]:
    out, rel, plans = job
    if "synth" not in _WORKER:
        _worker_init()
    clips = [render_clip(p, _WORKER["synth"]) for p in plans]
    digest = write_shard(clips, out / rel)
    seconds = sum(c.audio.shape[0] for c in clips) / 16000.0
    return rel, digest, len(clips), seconds


def shard_jobs(plans: list[ClipPlan], clips_per_shard: int) -> list[tuple[str, list[ClipPlan]]]:
    jobs = []
    for split in SPLITS:
        mine = [p for p in plans if p.split == split]
        for k in range(0, len(mine), clips_per_shard):
            jobs.append((f"{split}/shard_{k // clips_per_shard:05d}.safetensors", mine[k:k + clips_per_shard]))
    return jobs


def build_corpus(
    settings: CorpusSettings, out: Path, workers: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Render the corpus into `out` and write its manifest. `progress(done_shards, total, seconds)`."""
    from multiprocessing import get_context

    from ...inference.style_catalog import STYLE_CATALOG

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plans = plan_corpus(settings)
    jobs = shard_jobs(plans, settings.clips_per_shard)
    workers = max(1, workers or os.cpu_count() or 1)
    results: dict[str, tuple[str, int, float]] = {}
    done_seconds = 0.0
    ctx = get_context("fork")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        for rel, digest, n, seconds in pool.imap_unordered(_render_shard, [(out, r, p) for r, p in jobs]):
            results[rel] = (digest, n, seconds)
            done_seconds += seconds
            if progress:
                progress(len(results), len(jobs), done_seconds)
    wall = time.perf_counter() - t0
    manifest: dict[str, Any] = {
        "format": f"gestura-corpus-{FORMAT_VERSION}",
        "settings": asdict(settings),
        "styles": [
            {"id": e.id, "name": e.name, "descriptions": list(e.train_descriptions), "held_out": list(e.held_out)}
            for e in STYLE_CATALOG
        ],
        "part_order": list(PART_ORDER),
        "splits": {
            s: {
                "clips": sum(results[r][1] for r, _ in jobs if r.startswith(s + "/")),
                "hours": round(sum(results[r][2] for r, _ in jobs if r.startswith(s + "/")) / 3600.0, 4),
            }
            for s in SPLITS
        },
        "shards": [{"path": r, "sha256": results[r][0], "clips": results[r][1]} for r, _ in jobs],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    manifest["build_seconds"] = round(wall, 2)  # reported, not stored: the manifest stays byte-identical
    return manifest


def iter_clips(corpus: Path, split: str | None = None) -> Iterator[dict]:
    """Every clip of a corpus as a dict of arrays and metadata (for training, reports and tests)."""
    from safetensors.numpy import load_file

    corpus = Path(corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    for shard in manifest["shards"]:
        if split and not shard["path"].startswith(split + "/"):
            continue
        path = corpus / shard["path"]
        tensors = load_file(str(path))
        meta = json.loads(path.with_suffix(".json").read_text())
        fo, so = tensors["frame_offsets"], tensors["sample_offsets"]
        for k, m in enumerate(meta):
            yield {
                **m,
                "rotations": tensors["rotations"][fo[k]:fo[k + 1]],
                "root": tensors["root"][fo[k]:fo[k + 1]],
                "audio": tensors["audio"][so[k]:so[k + 1]],
                "part_style_ids": tensors["part_style_ids"][k],
            }
