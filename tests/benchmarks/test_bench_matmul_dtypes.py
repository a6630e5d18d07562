"""benchmarks/bench_matmul_dtypes.py runs at a tiny size, so it cannot rot (no rate is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_matmul_dtype_benchmark_prints_a_row_per_dtype() -> None:
    command = [sys.executable, "benchmarks/bench_matmul_dtypes.py", "--size", "64", "--threads", "1"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "dtype" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["float32", "bfloat16", "float16"]
    assert rows[0].split("|")[3].strip() == "1.00"
