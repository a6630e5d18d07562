"""benchmarks/bench_diagnosis.py runs end to end at a tiny size, records the planner it ran (extra
fields from --planner-option included) and refuses a field the planner does not have (no time asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_diagnosis.py"
TINY = ["--tasks", "Reach", "--episodes", "1", "--rows", "world_model", "--checkpoint",
        str(ROOT / "checkpoints" / "two_view"), "--samples", "8", "--iterations", "2", "--budget", "1"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *TINY, *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"}, timeout=600)


def test_a_tiny_icem_run_records_its_planner_options(tmp_path: Path) -> None:
    done = _run("--planner", "icem", "--planner-option", "keep_elites=0.5", "--planner-option", "topk=4",
                "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "| Reach |" in done.stdout
    header = json.loads((next(tmp_path.glob("Reach/*/episodes.jsonl"))).read_text().splitlines()[0])
    assert header["config"]["planner"]["keep_elites"] == 0.5 and header["config"]["planner"]["samples"] == 8


def test_a_field_the_planner_lacks_is_refused_by_name(tmp_path: Path) -> None:
    done = _run("--planner-option", "keep_elites=0.5", "--out", str(tmp_path))  # CEM has no keep_elites
    assert done.returncode == 2 and "keep_elites" in done.stderr
