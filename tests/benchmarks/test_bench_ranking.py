"""benchmarks/bench_ranking.py: its figures mean what its docstring says, and it runs end to end on
the two-view checkpoint at a tiny size (no time asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ranking import candidates, step_figures  # noqa: E402

from ami_robot.planners.core import ActionSpace  # noqa: E402


def test_candidates_start_with_the_given_action_and_stay_in_the_space() -> None:
    space = ActionSpace()
    first = np.array([0.5, -0.01, 0.02, 0.3, 0.0, 0.2, 0.4], np.float32)  # outside the box in x, rotated
    out = candidates(first, 5, np.random.default_rng(0), space, local=0.25)
    assert out.shape == (11, 7)
    assert torch.equal(out[0], space.project(torch.as_tensor(first)))
    assert torch.equal(out, space.project(out))  # all inside the box, rotation pinned to 0
    near, broad = out[6:, :3] - out[0, :3], out[1:6, :3]
    assert near.abs().mean() < broad.abs().mean()  # the local draws sit around row 0


def test_step_figures_perfect_reversed_and_local() -> None:
    rng = np.random.default_rng(1)
    real = rng.uniform(0.1, 0.5, 9)  # row 0, 4 broad, 4 local
    same = step_figures(real, real.copy())
    assert same["rho"] == pytest.approx(1.0) and same["regret"] == 0.0
    assert same["rho_local"] == pytest.approx(1.0)
    backwards = step_figures(real, -real)
    assert backwards["rho"] == pytest.approx(-1.0) and backwards["regret"] > 1.0  # picks the worst
    real[0], real[5] = 0.3, 0.1  # a local draw is 0.2 better than row 0
    assert step_figures(real, real)["local_gain"] == pytest.approx(real[0] - real[[0, 5, 6, 7, 8]].min())


def test_ranking_benchmark_runs_on_the_two_view_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "ranking.json"
    command = [sys.executable, "benchmarks/bench_ranking.py", "--tasks", "Grasp", "--seeds", "1",
               "--candidates", "3", "--checkpoint", "checkpoints/two_view", "--json", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    steps = json.loads(out.read_text())["steps"]["Grasp"]
    assert list(steps)[0] == "above_object" and "goal" in steps  # every stretch, in order, by name
    figures = [s for stretch in steps.values() for s in stretch]
    assert all(-1.0 <= s["rho"] <= 1.0 and s["regret"] >= 0.0 and s["spread"] >= 0.0 for s in figures)
    assert "| Grasp" in run.stdout


def test_ranking_refuses_evaluation_seeds() -> None:
    command = [sys.executable, "benchmarks/bench_ranking.py", "--seed-start", "10000"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2 and "development seeds" in run.stderr
