"""tools/compare_reports.py: a rerun's report matches within noise, a changed figure is named, timings only fail
when asked to."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "compare_reports.py"


def report() -> dict:
    summary = {"fgd": 3.99, "diversity": 90.9, "beat_alignment_0.3": 0.868, "beat_alignment_0.1": 0.57,
               "jerk": 30.06, "foot_slide_cm_s": 0.19,
               "style_accuracy": {"in_vocabulary": 0.9, "held_out": 0.75, "pure_clips": 201},
               "per_part_accuracy": {"arms": {"accuracy": 0.5, "clips": 65}}}
    return {
        "code_version": "abc", "started": "now",
        "corpus": {"manifest_sha256": "f00", "evaluated_clips": 266},
        "variants": {"diffusion": {"available": True, "summary": summary, "retrieval": {"R@1": 0.4, "R@5": 0.8}},
                     "broken": {"available": False}},
        "part_isolation": {"diffusion": {"max_leak_ratio": 0.7, "max_crosstalk": 0.2}},
        "targets": {"diffusion": {"checks": [{"id": "rtf_30s_cpu", "status": "PASS"},
                                             {"id": "style_in_vocabulary", "status": "PASS"}]}},
        "speed": {"runs": [{"available": True, "label": "diffusion", "seconds": 30.0, "rtf": 36.0}],
                  "ratios": {"ddpm_over_default": 60.0}, "register": {"register_s_median": 0.013},
                  "key_writing": {"write_keys_fcurve_s": 0.11}},
    }


def run(tmp_path: Path, a: dict, b: dict, *extra: str) -> subprocess.CompletedProcess:
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return subprocess.run([sys.executable, str(TOOL), str(pa), str(pb), *extra], capture_output=True, text=True,
                          check=False)


def test_a_rerun_within_noise_matches_and_slower_timings_only_warn(tmp_path) -> None:
    a, b = report(), report()
    b["variants"]["diffusion"]["summary"]["fgd"] = 3.991  # float noise
    b["speed"]["runs"][0]["rtf"] = 20.0  # a loaded machine
    out = run(tmp_path, a, b)
    assert out.returncode == 0, out.stdout
    assert "MATCH" in out.stdout and "timing differs" in out.stdout and "rtf" in out.stdout
    assert run(tmp_path, a, b, "--strict-speed").returncode == 1


def test_a_changed_figure_or_verdict_is_named(tmp_path) -> None:
    a = report()
    b = copy.deepcopy(a)
    b["variants"]["diffusion"]["summary"]["style_accuracy"]["held_out"] = 0.70
    b["targets"]["diffusion"]["checks"][1]["status"] = "FAIL"
    out = run(tmp_path, a, b)
    assert out.returncode == 1
    assert "diffusion.style_accuracy.held_out: 0.75 vs 0.7" in out.stdout
    assert "targets.diffusion.style_in_vocabulary: PASS vs FAIL" in out.stdout


def test_reports_of_different_data_are_not_compared(tmp_path) -> None:
    a, b = report(), report()
    b["corpus"]["manifest_sha256"] = "other"
    out = run(tmp_path, a, b)
    assert out.returncode == 2 and "different data" in out.stderr
