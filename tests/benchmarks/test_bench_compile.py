"""benchmarks/bench_compile.py runs end to end at a tiny size and prints the eager and compiled rows
with equal plans (no time asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_prints_both_rows_and_equal_plans() -> None:
    args = ["--tiny", "--episodes", "2", "--samples", "16", "--iterations", "2", "--repeats", "1"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_compile.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| eager |" in done.stdout and "| compiled |" in done.stdout
    assert float(done.stdout.split("largest plan difference ")[1].split()[0]) < 1e-4
