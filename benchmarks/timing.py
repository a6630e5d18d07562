"""Timing helpers shared by the benchmarks.

The benchmarks run as scripts (`python benchmarks/bench_models.py`), which puts this folder on
sys.path, so they import this module as `timing`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _wall_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of `repeats` runs of fn(), after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn over `repeats` runs, after one warm-up."""
    times = sorted(_wall_times(fn, repeats))
    return times[len(times) // 2]


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest wall seconds of fn() over `repeats` runs after one warm-up (the minimum, not the
    median: on a shared machine the other jobs only ever add time)."""
    return min(_wall_times(fn, repeats))


def matmul_gflops(n: int, repeats: int = 5, calls: int = 1, dtype: torch.dtype = torch.float32) -> float:
    """This machine's matmul rate (GFLOP/s, fp32 unless `dtype`): (n x n) @ (n x n), after one warm-up,
    timed as the mean of `calls` products, the best of `repeats` such timings (the ceiling, not a
    typical value)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / calls)
    return 2 * n**3 / best / 1e9


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter, also counting the CPU attention kernel (torch 2.13 leaves it out)."""
    def sdpa_cpu(q, k, v, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(q, k, v)
    return FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu})
