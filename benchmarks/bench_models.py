"""Speed of the world model on this machine: encoder frames/s, predictor steps/s, KV cache gain.

Prints achieved GFLOP/s beside the fp32 matmul GFLOP/s measured in the same run (the ceiling),
the cached rollout against the uncached one, and a CEM planning step with the shipped planner.

    .venv/bin/python benchmarks/bench_models.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from ami_robot.models import ENCODER_CONFIGS, PREDICTOR_CONFIGS, EncoderConfig, PredictorConfig
from ami_robot.world_model import WorldModel

from timing import matmul_gflops, median_seconds


def block_flops(dim: int, mlp: int, depth: int, tokens: int, attended: int) -> float:
    """Forward FLOPs of `depth` blocks on `tokens` query tokens attending to `attended` keys."""
    linear = 2 * tokens * (4 * dim * dim + 2 * dim * mlp)  # qkv + proj + fc1 + fc2
    attention = 2 * 2 * tokens * attended * dim  # q k^T and p v
    return depth * (linear + attention)


def encoder_flops(c: EncoderConfig) -> float:
    n = c.tokens_per_tubelet
    embed = 2 * n * c.dim * c.in_chans * c.tubelet_size * c.patch_size**2
    return embed + block_flops(c.dim, c.mlp_dim, c.depth, n, n)


def predictor_step_flops(c: PredictorConfig, attended: int) -> float:
    """FLOPs of one imagined step for one candidate (grid^2 + 2 tokens)."""
    n = c.grid**2
    io = 2 * n * c.input_dim * c.dim * 2  # predictor_embed and predictor_proj
    return io + 2 * 2 * c.dim * 7 + block_flops(c.dim, c.mlp_dim, c.depth, n + c.cond_tokens, attended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 2 if args.quick else 3
    torch.manual_seed(0)
    peak = matmul_gflops(2048)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, {os.cpu_count()} CPUs, "
          f"load average {load} (other processes share these cores)")
    print(f"fp32 matmul (2048^3, best of 5): {peak:.0f} GFLOP/s  <- this run's ceiling\n")

    print("encoder at 64 px (64 tokens per frame), batch 32 frames")
    frames = torch.randint(0, 256, (32, 64, 64, 3), dtype=torch.uint8)
    for name in ("micro", "tiny") if args.quick else ("micro", "tiny", "small"):
        enc = ENCODER_CONFIGS[name]
        wm = WorldModel.random(enc, dataclasses.replace(PREDICTOR_CONFIGS["micro"], input_dim=enc.dim))
        t = median_seconds(lambda wm=wm: wm.encode(frames), reps)
        gf = 32 * encoder_flops(wm.encoder.config) / t / 1e9
        print(f"  {name:6s} {sum(p.numel() for p in wm.encoder.parameters()) / 1e6:5.2f}M params: "
              f"{32 / t:7.0f} frames/s  {gf:5.1f} GFLOP/s ({100 * gf / peak:.0f}% of matmul)")

    samples = 300
    print(f"\npredictor: planning_cost on {samples} candidates, 1 context frame, KV-cached")
    sizes = ("tiny", "small") if args.quick else ("micro", "tiny", "small", "base")
    for name in sizes:
        cfg = PREDICTOR_CONFIGS[name]
        wm = WorldModel.random("micro" if cfg.input_dim == 96 else "tiny", name)
        z = torch.randn(1, 1, 64, cfg.input_dim)
        s = torch.rand(1, 1, 7)
        params = sum(p.numel() for p in wm.predictor.parameters()) / 1e6
        for horizon in (1, 2):
            cost = wm.planning_cost(z, s, z[:, 0], horizon)
            acts = torch.randn(samples, horizon, 7) * 0.05
            with torch.no_grad():
                t = median_seconds(lambda cost=cost, acts=acts: cost(acts), reps)
            per = cfg.grid**2 + cfg.cond_tokens
            flops = samples * sum(predictor_step_flops(cfg, per * (k + 1)) for k in range(horizon))
            gf = flops / t / 1e9
            print(f"  {name:6s} {params:5.2f}M params H={horizon}: {samples * horizon / t:6.0f} cand-steps/s "
                  f"{gf:5.1f} GFLOP/s ({100 * gf / peak:.0f}%); 300 x 3 iters = {3 * t:5.2f} s, "
                  f"x 5 = {5 * t:5.2f} s")

    print("\ncached vs uncached rollout: tiny, batch 16, 2 context frames, 4 imagined steps")
    wm = WorldModel.random("tiny", "tiny")
    z, s = torch.randn(16, 2, 64, 192), torch.rand(16, 2, 7)
    acts = torch.randn(16, 4, 7) * 0.05
    with torch.no_grad():
        cached = median_seconds(lambda: wm.rollout(z, s, acts), reps)
        uncached = median_seconds(lambda: wm.rollout(z, s, acts, use_cache=False), reps)
    print(f"  cached {1e3 * cached:6.0f} ms, uncached {1e3 * uncached:6.0f} ms, "
          f"uncached / cached = {uncached / cached:.2f}x")

    try:
        from ami_robot.planners import CEMConfig, cem
    except ImportError:  # the planners may not be installed in a stripped-down checkout
        cem = None
    if cem is None:
        return
    print("\nCEM planning step (ami_robot.planners.cem), tiny world model, 1 context frame")
    z1 = wm.encode(frames[:1])[:, None]
    for cfg in (CEMConfig.cpu_default(), CEMConfig(samples=300, iterations=3),
                CEMConfig(samples=300, iterations=5)):
        cost = wm.planning_cost(z1, torch.rand(1, 1, 7), wm.encode(frames[1:2]), cfg.horizon)
        with torch.no_grad():
            t = median_seconds(
                lambda cost=cost, cfg=cfg: cem(cost, cfg, generator=torch.Generator().manual_seed(0)),
                1 if args.quick else 2,
            )
        print(f"  {cfg.samples} samples x {cfg.iterations} iterations, horizon {cfg.horizon}: "
              f"{t:5.2f} s per step")


    print(f"\nfp32 matmul again at the end: {matmul_gflops(2048):.0f} GFLOP/s "
          "(the machine is shared: compare)")


if __name__ == "__main__":
    main()
