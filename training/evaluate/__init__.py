"""Evaluation of Gestura's engines on the procedural corpus's test split, and the report a person reads.

    .venv/bin/python tools/evaluate.py --corpus /tmp/corpus20 --out docs/eval

- data.py: test clips, the prompt each engine gets for a clip, long test speech for speed runs;
- engines.py: the variants (ground truth, rule, diffusion default / DDPM 1000 steps / no style, checkpoints);
- quality.py: per-clip metrics, the style classifiers, FGD reference, retrieval, per-part isolation helpers;
- speed.py: real-time factor, peak memory, register and key-writing time (fresh processes);
- runner.py: one run of everything; report.py: report.md + report.json + PNG plots; sheets.py: pictures;
- targets.py: the generator issue's targets, PASS / FAIL.

Pure Python + numpy + torch (+ matplotlib and scikit-learn, as the corpus report); no bpy (the register and
key-writing figures run Blender's module in subprocesses).
"""

from __future__ import annotations

from .runner import EvalConfig, run_evaluation

__all__ = ["EvalConfig", "run_evaluation"]
