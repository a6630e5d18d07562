"""benchmarks/profile_planning.py runs at its tiny size, so it cannot rot; no time is asserted, only the
report's structure and that its categories split the whole step."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOME_CATEGORIES = {"attention", "linear / matmul", "layer norm", "energy", "planner sampling / update",
                   "Python and dispatch overhead"}


def test_tiny_planning_profile(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    command = [sys.executable, "benchmarks/profile_planning.py", "--tiny", "--steps", "1", "--warmup", "0",
               "--samples", "16", "--iterations", "2", "--json", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| category | ms per step | share |" in run.stdout
    report = json.loads(out.read_text())
    assert report["planner"] == {"samples": 16, "iterations": 2, "horizon": 1}
    names = [c["name"] for c in report["categories"]]
    assert len(set(names)) == len(names) and SOME_CATEGORIES <= set(names)
    assert math.isclose(sum(c["share"] for c in report["categories"]), 1.0, abs_tol=1e-6)
    assert all(c["ms"] >= 0 and 0 <= c["share"] <= 1 for c in report["categories"])
    assert all({"op", "ms", "calls"} <= set(o) for c in report["categories"] for o in c["top_ops"])
    # a cost call runs the predictor: its linear layers and attention are seen, and counted in FLOPs
    shares = {c["name"]: c["share"] for c in report["categories"]}
    assert shares["linear / matmul"] > 0 and shares["attention"] > 0 and shares["energy"] > 0
    assert report["gflop_per_step"] > report["encode_gflop"] > 0 and report["ops_per_step"] > 0
    assert {"wall_ms_per_step", "profiled_wall_ms_per_step", "achieved_gflops", "linear_gflops",
            "attention_gflops", "matmul_gflops"} <= set(report)
