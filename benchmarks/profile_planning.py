"""Where the time goes inside one latent planning step: torch.profiler's self CPU time of every op,
grouped into categories, beside the FLOPs the step does and this machine's fp32 matmul rate.

    python benchmarks/profile_planning.py                                  # the shipped config
    python benchmarks/profile_planning.py --checkpoint checkpoints/two_view
    python benchmarks/profile_planning.py --tiny --steps 1 --json out.json # a random micro model (CI)

A planning step is what MPCAgent.act does for one episode: encode the observation and build the
cost (LatentCostModel.cost_fn, the agent's path), then CEM over that cost (the shipped 128 x 4,
horizon 1, unless told otherwise); left out: the agent's one-row cost of the chosen plan. The
frames are random pixels: the work does not depend on them.

How the time is split. The benchmark, not the library, opens profiler ranges: around encoding,
around each cost call, around the energy (an instance attribute over WorldModel.energy), around
attention (ami_robot.models.layers.attend) and around RoPE (the predictor's tables and
layers.apply_rope). Each op's self time goes to the first of: the range it runs in (encode, energy,
attention, RoPE; outside any cost call: the planner's own sampling and refit), else the kind of its
outermost op (aten::linear's addmm counts as linear). "Python and dispatch overhead" is the profiled
steps' wall time minus the ops' summed self time: the interpreter, module calls, the dispatcher
between ops, and the profiler's own bookkeeping (compare the wall time without the profiler, also
reported). Times are wall times: on a loaded machine every row stretches, the shares less so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from unittest import mock

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from ami_robot.agent import LatentCostModel
from ami_robot.apps.common import DTYPES
from ami_robot.envs import VIEWS, view_key
from ami_robot.models import layers
from ami_robot.planners import CEMConfig, cem
from ami_robot.world_model import WorldModel

from timing import flop_counter, matmul_gflops, median_seconds

TAG = "profile::"  # our ranges' prefix
CATEGORIES = ("encode observation", "attention", "linear / matmul", "layer norm", "RoPE tables",
              "RoPE rotation", "elementwise / activation", "copies, views, allocation", "energy",
              "planner sampling / update", "other ops", "Python and dispatch overhead")
RANGES = {"encode": "encode observation", "energy": "energy", "attend": "attention",
          "rope_tables": "RoPE tables", "rope": "RoPE rotation"}
KINDS = {  # outermost op -> category, for ops inside a cost call but in none of the ranges above
    "linear / matmul": ("linear", "addmm", "mm", "matmul", "bmm", "baddbmm"),
    "layer norm": ("layer_norm", "native_layer_norm"),
    "elementwise / activation": ("gelu", "add", "add_", "mul", "mul_", "sub", "div", "neg", "cos", "sin",
                                 "exp", "pow", "sqrt", "rsqrt", "abs", "mean", "sum", "softmax", "where",
                                 "maximum", "minimum", "clamp", "masked_fill", "flip", "isnan", "nan_to_num"),
    "copies, views, allocation": ("copy_", "cat", "stack", "empty", "empty_strided", "new_empty", "new_ones",
                                  "zeros", "zeros_like", "ones_like", "full", "fill_", "zero_", "contiguous",
                                  "clone", "to", "_to_copy", "repeat", "repeat_interleave", "arange",
                                  "view", "reshape", "_unsafe_view", "transpose", "t", "select", "slice",
                                  "as_strided", "expand", "unflatten", "flatten", "split", "split_with_sizes",
                                  "unsqueeze", "squeeze", "permute", "narrow", "detach", "alias",
                                  "lift_fresh", "index", "index_put_", "result_type"),
}
OP_KIND = {f"aten::{op}": kind for kind, ops in KINDS.items() for op in ops}


def tagged(name: str, fn: Callable) -> Callable:
    """fn, run inside the profiler range TAG + name."""
    def run(*args, **kwargs):
        with record_function(TAG + name):
            return fn(*args, **kwargs)
    return run


class TaggedCostModel(LatentCostModel):
    """The agent's cost model, with encoding and each cost call in profiler ranges."""

    def batch_cost_fn(self, obs, goals, horizon):
        with record_function(TAG + "encode"):
            cost = super().batch_cost_fn(obs, goals, horizon)
        return tagged("cost", cost)


@contextlib.contextmanager
def ranges(wm: WorldModel) -> Iterator[None]:
    """Attention, RoPE and the energy in profiler ranges, put back on exit (the library is untouched)."""
    patches = [(layers, "attend", "attend", layers.attend), (layers, "apply_rope", "rope", layers.apply_rope),
               (wm.predictor, "_rope", "rope_tables", wm.predictor._rope),
               (wm, "energy", "energy", WorldModel.energy)]
    with contextlib.ExitStack() as stack:
        for owner, attribute, name, fn in patches:
            stack.enter_context(mock.patch.object(owner, attribute, tagged(name, fn)))
        yield


def category(event) -> str:
    """The category of one op event, from the ranges above it and its outermost op."""
    found, outer, e = set(), event.name, event
    while e is not None:
        if e.name.startswith(TAG):
            found.add(e.name[len(TAG):])
        else:
            outer = e.name
        e = e.cpu_parent
    for name in RANGES:
        if name in found:
            return RANGES[name]
    if "cost" not in found:
        return "planner sampling / update"
    return OP_KIND.get(outer, "other ops")


def build(args: argparse.Namespace) -> tuple[WorldModel, dict, np.ndarray]:
    """The world model, one observation (random pixels, zero state) and a goal image."""
    dtype = DTYPES[args.dtype]
    if args.checkpoint:
        wm = WorldModel.from_checkpoint(args.checkpoint, dtype=dtype)
    else:
        wm = WorldModel.random(*(("micro", "micro") if args.tiny else ()), dtype=dtype)
    wm.eval()
    rng = np.random.default_rng(0)
    size, views = wm.image_size, VIEWS[:wm.views]
    obs = {view_key(v): rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for v in views}
    obs["state"] = np.zeros(7, np.float32)
    goal = rng.integers(0, 256, (len(views) * size, size, 3), dtype=np.uint8)  # views stacked
    return wm, obs, goal


def profile_planning(args: argparse.Namespace) -> dict:
    """Time, profile and count the FLOPs of planning steps: the report (ms are per planning step)."""
    torch.manual_seed(0)
    wm, obs, goal_pixels = build(args)
    cfg = CEMConfig.cpu_default(samples=args.samples, iterations=args.iterations, horizon=args.horizon,
                                topk=min(10, args.samples))

    def planning_step(model: LatentCostModel, z_goal: torch.Tensor, seed: int = 0) -> torch.Tensor:
        cost = model.cost_fn(obs, z_goal, cfg.horizon)  # encodes the observation
        return cem(cost, cfg, generator=torch.Generator().manual_seed(seed))

    plain, tagged_model = LatentCostModel(wm), TaggedCostModel(wm)
    z_goal = plain.encode_goal(goal_pixels)  # (1, N, D), once per episode as in the agent
    wall = median_seconds(lambda: planning_step(plain, z_goal), args.steps)

    with ranges(wm):
        for k in range(args.warmup):
            planning_step(tagged_model, z_goal, k)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for k in range(args.steps):
                planning_step(tagged_model, z_goal, k)
            profiled_wall = (time.perf_counter() - start) / args.steps

    ops: dict = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))  # category -> op -> [self us, calls]
    for event in prof.events():
        if not event.name.startswith(TAG):
            entry = ops[category(event)][event.name]
            entry[0] += event.self_cpu_time_total
            entry[1] += 1
    ms = {c: sum(us for us, _ in ops[c].values()) / 1e3 / args.steps for c in CATEGORIES[:-1]}
    ms["Python and dispatch overhead"] = max(1e3 * profiled_wall - sum(ms.values()), 0.0)
    total_ms = sum(ms.values())

    # FLOPs of one step, the encoding's and CEM's apart, and the rates the two big kinds of op reach
    with flop_counter() as enc:
        cost = plain.cost_fn(obs, z_goal, cfg.horizon)
    with flop_counter() as plan:
        cem(cost, cfg, generator=torch.Generator().manual_seed(0))
    plan_ops = {str(op): n for op, n in plan.get_flop_counts()["Global"].items()}
    flops = enc.get_total_flops() + plan.get_total_flops()
    linear_flops = sum(n for op, n in plan_ops.items() if op.split(".")[1] in ("addmm", "mm", "bmm"))
    attention_flops = sum(n for op, n in plan_ops.items() if "scaled_dot_product" in op)

    def top(c: str, k: int = 4) -> list[dict]:
        rows = sorted(ops[c].items(), key=lambda kv: -kv[1][0])[:k]
        return [{"op": op, "ms": us / 1e3 / args.steps, "calls": n / args.steps} for op, (us, n) in rows]

    return {
        "model": {"checkpoint": args.checkpoint, "tiny": args.tiny, "views": wm.views,
                  "tokens_per_step": wm.predictor.config.cond_tokens + wm.predictor.config.patch_tokens,
                  "predictor_params": sum(p.numel() for p in wm.predictor.parameters())},
        "planner": {"samples": cfg.samples, "iterations": cfg.iterations, "horizon": cfg.horizon},
        "steps": args.steps, "wall_ms_per_step": 1e3 * wall, "profiled_wall_ms_per_step": 1e3 * profiled_wall,
        "ops_per_step": sum(n for c in ops.values() for _, n in c.values()) / args.steps,
        "categories": [{"name": c, "ms": ms[c], "share": ms[c] / total_ms, "top_ops": top(c)}
                       for c in CATEGORIES],
        "gflop_per_step": flops / 1e9, "encode_gflop": enc.get_total_flops() / 1e9,
        "achieved_gflops": flops / wall / 1e9,
        "linear_gflops": linear_flops / max(ms["linear / matmul"], 1e-9) / 1e6,
        "attention_gflops": attention_flops / max(ms["attention"], 1e-9) / 1e6,
        "matmul_gflops": matmul_gflops(1024, calls=4, dtype=DTYPES[args.dtype]),
    }


def markdown(r: dict) -> str:
    """The category table, then the step's totals and rates."""
    lines = ["| category | ms per step | share | biggest ops |", "|---|---:|---:|---|"]
    for c in r["categories"]:
        biggest = ", ".join(f"{o['op'].removeprefix('aten::')} {o['ms']:.1f}" for o in c["top_ops"][:3])
        lines.append(f"| {c['name']} | {c['ms']:.1f} | {100 * c['share']:.1f}% | {biggest} |")
    lines += [f"| **total (profiled wall)** | **{r['profiled_wall_ms_per_step']:.1f}** | 100% | |", "",
              f"wall without the profiler {r['wall_ms_per_step']:.1f} ms per step; "
              f"{r['ops_per_step']:.0f} ops per step; {r['gflop_per_step']:.2f} GFLOP per step "
              f"({r['encode_gflop']:.3f} encoding) at {r['achieved_gflops']:.1f} GFLOP/s; inside the cost, "
              f"linear ops reach {r['linear_gflops']:.1f} GFLOP/s and attention {r['attention_gflops']:.1f}; "
              f"matmul (1024^2) in the model's dtype here: {r['matmul_gflops']:.1f} GFLOP/s"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="a model folder (WorldModel.from_checkpoint)")
    p.add_argument("--tiny", action="store_true", help="a random micro model (CI: it runs, no time asserted)")
    p.add_argument("--samples", type=int, default=CEMConfig.cpu_default().samples)
    p.add_argument("--iterations", type=int, default=CEMConfig.cpu_default().iterations)
    p.add_argument("--horizon", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="profiled planning steps (and unprofiled, timed)")
    p.add_argument("--warmup", type=int, default=2, help="planning steps run first, untimed")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="the model's compute type")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
              **profile_planning(args)}
    print(markdown(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
