"""Fixtures shared by the unit tests: the small procedural corpus the evaluation and training smoke tests run on."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The smoke corpus: 0.7 h of 5-9 s clips (about 400 clips; the style classifier needs a few hundred pure train
# clips to name the 25 styles reliably). Built once and cached in .cache/ under a key of its settings and of
# the code that renders it, so an edit of the engine or the corpus builder rebuilds it.
SMOKE_SETTINGS = {"hours": 0.7, "seed": 5, "clip_seconds": (5.0, 9.0), "clips_per_shard": 32}


def _source_key() -> str:
    h = hashlib.sha256(json.dumps(SMOKE_SETTINGS, sort_keys=True).encode())
    for folder in ("inference", "training/corpus"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            h.update(path.relative_to(ROOT).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def smoke_corpus() -> Path:
    from gestura.training.corpus.build import CorpusSettings, build_corpus

    target = ROOT / ".cache" / "eval_smoke" / f"corpus_{_source_key()}"
    if (target / "manifest.json").is_file():
        os.utime(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Corpora of older code: removed once unused for a day (another test run may still be reading one).
    for old in target.parent.iterdir():
        if old != target and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    tmp = target.parent / f"building_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    build_corpus(CorpusSettings(**SMOKE_SETTINGS), tmp, workers=2)  # type: ignore[arg-type]
    try:
        os.replace(tmp, target)
    except OSError:  # another run built the same corpus meanwhile (same settings and code: same bytes)
        shutil.rmtree(tmp, ignore_errors=True)
    assert (target / "manifest.json").is_file()
    return target
