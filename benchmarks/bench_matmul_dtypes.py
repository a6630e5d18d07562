"""This CPU's matmul rate in each float type torch offers for planning: fp32, bf16, fp16.

    python benchmarks/bench_matmul_dtypes.py              # torch's thread count
    python benchmarks/bench_matmul_dtypes.py --threads 1 --size 1024

Whether bf16 pays depends on the CPU: with AVX512-BF16 or AMX (recent Xeon, AMD Zen 4) torch's bf16
matmul runs several times faster than fp32; without them it falls back to slow paths, and fp16 is
slow on most CPUs. Prints GFLOP/s (the best of a few timings) and the ratio to fp32.
"""

from __future__ import annotations

import argparse

import torch

from timing import matmul_gflops

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="n of the (n x n) @ (n x n) product")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rates = {name: matmul_gflops(args.size, repeats=3, dtype=dtype) for name, dtype in DTYPES.items()}
    print(f"{args.size}^2 matmul, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print("| dtype | GFLOP/s | / fp32 |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rate / rates['float32']:.2f} |")


if __name__ == "__main__":
    main()
