"""The diffusion model's training data: a corpus split as motion latents plus frame-aligned conditions.

One pass over a split (`prepare_latent_set`) computes, per clip:
- audio features per motion frame (`inference.conditioning.audio_frame_features`: log-mel, onset, energy,
  log pitch, voicing), float16;
- the frozen motion autoencoder's latents (T/4, 7 parts, latent_dim), float32;
- per-frame transcript tokens and word onsets in the gesture-transcript embedding's vocabulary;
- per-part style ids, the style description and whether it is a held-out one.

It is written as one safetensors file plus a JSON list of clip metadata, named by a key of everything that
went into it (corpus manifest, model weights, code version), so a changed input never reuses stale data.
Audio features dominate the cost (librosa pyin); they run in a process pool.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CODE_VERSION = 1


@dataclass
class LatentSet:
    """A split in memory; clip k spans frames ``frame_offsets[k]:frame_offsets[k+1]`` and latent frames
    ``latent_offsets[k]:latent_offsets[k+1]`` (frames = 4 x latent frames, the tail that does not fill a latent
    frame is cut)."""

    audio: np.ndarray  # (F, A) float16
    tokens: np.ndarray  # (F,) int32
    onsets: np.ndarray  # (F,) int8
    latents: np.ndarray  # (L, P, D) float32
    frame_offsets: np.ndarray
    latent_offsets: np.ndarray
    part_style_ids: np.ndarray  # (N, P) int64
    meta: list[dict]

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def latent_lengths(self) -> np.ndarray:
        return np.diff(self.latent_offsets)

    def clip(self, k: int) -> dict[str, np.ndarray]:
        f0, f1 = self.frame_offsets[k], self.frame_offsets[k + 1]
        l0, l1 = self.latent_offsets[k], self.latent_offsets[k + 1]
        return {"audio": self.audio[f0:f1], "tokens": self.tokens[f0:f1], "onsets": self.onsets[f0:f1],
                "latents": self.latents[l0:l1], "part_style_ids": self.part_style_ids[k]}


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_key(corpus: Path, split: str, ae_dir: Path, tg_dir: Path, max_clips: int) -> str:
    from ...inference.conditioning import CONDITIONING_VERSION

    desc = {
        "manifest": _file_sha(corpus / "manifest.json"), "split": split, "max_clips": max_clips,
        "ae": _file_sha(ae_dir / "model.safetensors"), "tg": _file_sha(tg_dir / "model.safetensors"),
        "code": CODE_VERSION, "conditioning": CONDITIONING_VERSION,
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def _audio_job(args: tuple[np.ndarray, int]) -> np.ndarray:
    import torch

    from ...inference.audio import Audio
    from ...inference.conditioning import audio_frame_features

    torch.set_num_threads(1)
    pcm, n_frames = args
    audio = Audio(np.asarray(pcm, dtype=np.float32) / 32767.0, 16000, "corpus")
    return audio_frame_features(audio, n_frames).astype(np.float16)


def _clips(corpus: Path, split: str, max_clips: int) -> Iterator[dict]:
    from ..corpus.build import iter_clips

    for k, clip in enumerate(iter_clips(corpus, split)):
        if max_clips and k >= max_clips:
            return
        yield clip


def prepare_latent_set(corpus: str | Path, split: str, ae_dir: str | Path, tg_dir: str | Path,
                       cache_dir: str | Path, *, workers: int = 2, max_clips: int = 0,
                       verbose: bool = True) -> Path:
    """Build (or find) the prepared split; returns the .safetensors path."""
    import torch
    from safetensors.numpy import save_file

    from ...inference.conditioning import frame_tokens_for
    from ...inference.nets.loading import load_motion_ae, load_transcript_vocab
    from ...inference.rotations import quat_to_6d

    corpus, ae_dir, tg_dir, cache_dir = Path(corpus), Path(ae_dir), Path(tg_dir), Path(cache_dir)
    key = set_key(corpus, split, ae_dir, tg_dir, max_clips)
    out = cache_dir / f"{split}-{key}.safetensors"
    if out.exists() and out.with_suffix(".json").exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    ae = load_motion_ae(ae_dir)
    vocab = load_transcript_vocab(tg_dir)
    factor = ae.config.factor

    t0 = time.perf_counter()
    clips = list(_clips(corpus, split, max_clips))
    frames = [(len(c["rotations"]) // factor) * factor for c in clips]
    jobs = [(c["audio"], n) for c, n in zip(clips, frames, strict=False)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            audio = pool.map(_audio_job, jobs, chunksize=4)
    else:
        audio = [_audio_job(j) for j in jobs]
    t_audio = time.perf_counter() - t0

    latents, tokens, onsets, meta = [], [], [], []
    with torch.no_grad():
        for clip, n in zip(clips, frames, strict=False):
            quats = torch.as_tensor(np.asarray(clip["rotations"][:n], dtype=np.float32))
            sixd = torch.as_tensor(quat_to_6d(quats.numpy().astype(np.float64)).astype(np.float32))
            root = np.asarray(clip["root"][:n], dtype=np.float32)
            vel = np.zeros_like(root)
            vel[1:] = (root[1:] - root[:-1]) * ae.config.fps
            z, _ = ae.encode(sixd[None], torch.as_tensor(vel)[None])
            latents.append(z[0].numpy().astype(np.float32))
            tok, ons = frame_tokens_for([(w[0], float(w[1]), float(w[2])) for w in clip["words"]], n, vocab)
            tokens.append(tok)
            onsets.append(ons)
            meta.append({"index": int(clip["index"]), "style_id": int(clip["style_id"]),
                         "description": clip.get("description", ""),
                         "held_out": bool(clip.get("description_held_out", False)),
                         "mixed": bool(clip.get("mixed", False)), "frames": int(n),
                         "root0": [float(v) for v in root[0]] if n else [0.0, 0.0, 0.0],
                         "words": [[str(w[0]), float(w[1]), float(w[2])] for w in clip["words"]]})
    f_off = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    l_off = np.concatenate([[0], np.cumsum([n // factor for n in frames])]).astype(np.int64)
    tensors = {
        "audio": np.concatenate(audio) if audio else np.zeros((0, 1), np.float16),
        "tokens": np.concatenate(tokens).astype(np.int32), "onsets": np.concatenate(onsets).astype(np.int8),
        "latents": np.concatenate(latents).astype(np.float32), "frame_offsets": f_off, "latent_offsets": l_off,
        "part_style_ids": np.stack([np.asarray(c["part_style_ids"]).reshape(-1) for c in clips]).astype(np.int64),
    }
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp))
    out.with_suffix(".json").write_text(json.dumps(meta))
    os.replace(tmp, out)
    if verbose:
        print(f"prepared {split}: {len(clips)} clips, {f_off[-1] / 30 / 3600:.2f} h, audio {t_audio:.0f} s, "
              f"total {time.perf_counter() - t0:.0f} s -> {out}", flush=True)
    return out


def load_latent_set(path: str | Path) -> LatentSet:
    from safetensors.numpy import load_file

    path = Path(path)
    t = load_file(str(path))
    return LatentSet(audio=t["audio"], tokens=t["tokens"], onsets=t["onsets"], latents=t["latents"],
                     frame_offsets=t["frame_offsets"], latent_offsets=t["latent_offsets"],
                     part_style_ids=t["part_style_ids"], meta=json.loads(path.with_suffix(".json").read_text()))


def latent_set(corpus: str | Path, split: str, ae_dir: str | Path, tg_dir: str | Path,
               cache_dir: str | Path = ".cache/latents", *, max_clips: int = 0, workers: int = 2) -> LatentSet:
    """The prepared split, building it first when needed."""
    return load_latent_set(prepare_latent_set(corpus, split, ae_dir, tg_dir, cache_dir, workers=workers,
                                              max_clips=max_clips))


def latent_windows(data: LatentSet, rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Random windows of ``length`` latent frames: (clip index (batch,), start latent frame (batch,)), clips drawn
    in proportion to how many windows they hold."""
    lengths = data.latent_lengths
    ok = np.flatnonzero(lengths >= length)
    if len(ok) == 0:
        raise ValueError(f"no clip of {length} latent frames or more")
    weights = (lengths[ok] - length + 1).astype(np.float64)
    clips = ok[rng.choice(len(ok), size=batch, p=weights / weights.sum())]
    starts = (rng.random(batch) * (lengths[clips] - length + 1)).astype(np.int64)
    return clips, starts
