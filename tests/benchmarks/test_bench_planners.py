"""benchmarks/bench_planners.py runs at its tiny size, so it cannot rot; no time is asserted, only what
it reports and that the cached cost equals the reference-style (uncached) one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_planner_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "planners.json"
    command = [sys.executable, "benchmarks/bench_planners.py", "--tiny", "--json", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    latent = json.loads(out.read_text())["latent"]
    assert {"shipped", "gflop_per_step", "ratio", "vs_samples", "vs_horizon"} <= set(latent)
    batching = latent["batched_vs_one_by_one"]
    assert batching["episodes"] == 8 and batching["one_by_one_s"] > 0 and batching["batched_s"] > 0
    rows = latent["reference_vs_ours"]
    assert [(r["context"], r["horizon"]) for r in rows] == [(1, 1), (1, 3), (4, 1), (4, 3)]
    assert all(r["max_cost_diff"] < 1e-5 for r in rows)
