"""benchmarks/probe_push_length.py prints one row per push length at each probed step, the object
ends no nearer its goal after no push than before, and evaluation seeds are refused (no time asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "probe_push_length.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    tiny = ["--checkpoint", str(ROOT / "checkpoints" / "two_view"), "--samples", "16", "--iterations", "1",
            "--budget", "1"]
    return subprocess.run([sys.executable, str(SCRIPT), *tiny, *args],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"},
                          timeout=600)


def test_a_probe_prints_every_length(tmp_path: Path) -> None:
    done = _run("--seed", "20001", "--at", "0", "1", "--save", str(tmp_path / "probe.png"))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2 * 8
    before = float(done.stdout.split("object ")[1].split(" cm")[0])
    assert float(rows[0].split("|")[5]) >= before - 0.05  # no push moves the object by itself
    assert (tmp_path / "probe.png").stat().st_size > 0


def test_a_planner_setting_it_cannot_take_is_named() -> None:
    done = _run("--seed", "20001", "--samples", "4")
    assert done.returncode == 2 and "topk" in done.stderr


def test_evaluation_seeds_are_refused() -> None:
    done = _run("--seed", "10001", "--at", "0")
    assert done.returncode == 2 and "development seeds" in done.stderr
