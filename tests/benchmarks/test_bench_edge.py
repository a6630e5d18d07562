"""benchmarks/bench_edge.py runs at its tiny size, so it cannot rot; no time is asserted, only what it
reports and that onnxruntime fp32 plans as torch does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_edge_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "edge.json"
    command = [sys.executable, "benchmarks/bench_edge.py", "--tiny", "--horizons", "1,2", "--json", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| onnx_int8 |" in run.stdout and "s / planning step" in run.stdout
    report = json.loads(out.read_text())
    assert list(report["planners"]) == ["CEM 16 x 1, H=1", "CEM 16 x 1, H=2"]
    for rows in report["planners"].values():
        assert list(rows) == ["torch", "onnx_fp32", "onnx_int8"]
        assert rows["onnx_fp32"]["candidate_cost_max_diff"] < 1e-4
        assert rows["onnx_fp32"]["first_action_xyz_max_diff_m"] < 1e-4
        assert rows["onnx_int8"]["candidate_cost_max_diff"] < 0.02
    assert set(report["encode_s"]) == {"torch", "onnx_fp32", "onnx_int8"}
