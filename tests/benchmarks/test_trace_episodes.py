"""benchmarks/trace_episodes.py plays a tiny episode and its rows agree with the simulator: every
step is there, and with --gripper-snap each gripper move is whole and the command is their sum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "benchmarks" / "trace_episodes.py")


def test_a_tiny_trace_with_whole_gripper_moves(tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    done = subprocess.run(
        [sys.executable, SCRIPT, "--tasks", "Reach", "--seeds", "20000",
         "--checkpoint", str(ROOT / "checkpoints" / "two_view"), "--samples", "16", "--iterations", "2",
         "--budget", "1", "--steps", "8", "--gripper-snap", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Reach seed 20000:" in done.stdout
    rows = json.loads(out.read_text())["Reach"]["20000"]
    assert [r["t"] for r in rows] == list(range(8))  # --steps of Reach's 30
    assert [r["goal"] for r in rows] == [0] * 8  # Reach: the final goal image only
    moves = np.array([r["action"][3] for r in rows])
    assert set(np.abs(moves).round(6)) <= {0.0, 0.75} and np.abs(moves).max() == 0.75  # moves were made
    command, expected = 0.0, []
    for move in moves:  # the env's command: the last one plus the move, inside [0, 1]
        command = min(max(command + move, 0.0), 1.0)
        expected.append(command)
    assert np.allclose([r["gripper_cmd"] for r in rows], expected, atol=1e-3)


def test_evaluation_seeds_are_refused() -> None:
    done = subprocess.run([sys.executable, SCRIPT, "--seeds", "10000"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 2 and "development seeds" in done.stderr
