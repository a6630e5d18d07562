"""Run the `ami-robot` command as a user would: a subprocess, small settings, a temp output dir."""

import subprocess
import sys
from pathlib import Path

import pytest

# Small and fast: random weights, 64 px frames, a tiny planner budget.
FAST = ["model=random", "env.image_size=64", "planner.samples=8", "planner.iterations=1", "planner.topk=2"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from ami_robot.apps import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)


@pytest.fixture
def cli():
    return run_cli
