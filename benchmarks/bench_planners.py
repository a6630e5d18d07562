"""Planner benchmark: speed of latent CEM on the shipped model config, and the simulator
("perfect model") CEM success on Reach and Push.

    python benchmarks/bench_planners.py                 # everything, 20 episodes per task
    python benchmarks/bench_planners.py --skip-sim      # latent planning speed only
    python benchmarks/bench_planners.py --episodes 50 --skip-latent
    python benchmarks/bench_planners.py --tiny --json report.json   # a random micro model (CI)
    python benchmarks/bench_planners.py --skip-sim --dtype bfloat16  # the latent part in bf16
    python benchmarks/bench_planners.py --skip-sim --compile         # with model.compile=true
    python benchmarks/bench_planners.py --skip-sim --chunk-rows 0    # every candidate in one call

Latent part (WorldModel.random with the default config until trained weights exist):
- seconds per planning step at the shipped CEM default and at the paper's 800 x 10;
- GFLOP/s achieved inside CEM (FLOPs counted by torch's FlopCounterMode, CPU attention included)
  beside this machine's matmul GFLOP/s in the model's dtype (--dtype) measured in the same run
  (goal: ratio >= 0.6); --compile plans with the compiled predictor (model.compile=true);
- the same plan computed the reference way (no key/value cache: every candidate recomputes
  its context) against ours (goal: >= 3x);
- 8 episodes planned in one batch (eval's batch_size) against one by one, at the shipped CEM;
- time against samples and against horizon (goal: linear in both).
Simulator part: CEM on SimCostModel (each candidate simulated in MuJoCo, state cost), success
at the end of the task's budget (EVAL_PROTOCOL.md: no early stop).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable

import numpy as np
import torch

from ami_robot.apps.common import DTYPES
from ami_robot.planners import CEMConfig, cem
from ami_robot.sim_model import StateCost

from timing import best_seconds, flop_counter, matmul_gflops


def fit_linear(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x -> (a, b, r^2)."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (a + b * x)) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-30)
    return float(a), float(b), float(r2)


# ---------------------------------------------------------------------------------- latent CEM
def bench_latent(repeats: int, paper: bool, tiny: bool = False, dtype: str = "float32",
                 compile_predictor: bool = False, chunk_rows: int | None = None) -> dict:
    from ami_robot.world_model import WorldModel

    torch.manual_seed(0)
    wm = WorldModel.random(*(("micro", "micro") if tiny else ()), dtype=DTYPES[dtype])
    wm.eval()
    if chunk_rows is not None:
        wm.plan_chunk_rows = chunk_rows or None  # 0: every candidate row in one predictor call
    size = getattr(wm, "image_size", None) or 256
    frames = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    with torch.no_grad():
        z = wm.encode(frames)  # (2, N, D)
    z_ctx, z_goal = z[:1, None], z[1:]  # (1, 1, N, D), (1, N, D)
    state = torch.zeros(1, 1, 7)
    out: dict = {"tokens": tuple(z.shape[1:]), "params": sum(p.numel() for p in wm.parameters()),
                 "dtype": dtype, "compiled": compile_predictor, "chunk_rows": wm.plan_chunk_rows}

    def contexts(c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A context of c frames (the paper plans from c = 1) and its states."""
        return z_ctx.expand(-1, c, -1, -1), state.expand(-1, c, -1) + 0.01 * torch.arange(c)[None, :, None]

    def ours(cfg: CEMConfig, c: int = 1) -> Callable[[], torch.Tensor]:
        cost = wm.planning_cost(*contexts(c), z_goal, cfg.horizon)
        return lambda: cem(cost, cfg, generator=torch.Generator().manual_seed(0))

    def reference_cost(c: int) -> Callable[[torch.Tensor], torch.Tensor]:
        zc, sc = contexts(c)

        def cost(actions: torch.Tensor) -> torch.Tensor:
            z_pred = wm.rollout(zc, sc, actions, use_cache=False)  # every candidate reruns its context
            return wm.energy(z_pred[:, -1], z_goal)

        return cost

    def reference(cfg: CEMConfig, c: int = 1) -> Callable[[], torch.Tensor]:
        cost = reference_cost(c)
        return lambda: cem(cost, cfg, generator=torch.Generator().manual_seed(0))

    def cost_diff(cfg: CEMConfig, c: int) -> float:
        """The two costs on the same candidates: what the cache may change (float rounding only)."""
        actions = 0.05 * torch.randn(cfg.samples, cfg.horizon, 7, generator=torch.Generator().manual_seed(1))
        ours_cost = wm.planning_cost(*contexts(c), z_goal, cfg.horizon)
        return float((reference_cost(c)(actions) - ours_cost(actions)).abs().max())

    small = {"samples": 32, "topk": 8} if tiny else {}  # tiny: it runs, its figures mean nothing
    shipped = CEMConfig.cpu_default(**small)
    # FLOPs of one shipped CEM step, counted on the eager predictor (a compiled one does the same
    # work, but torch cannot count inside its kernels)
    with flop_counter() as counter:
        ours(shipped)()
    flops = counter.get_total_flops()
    if compile_predictor:
        wm.compile_planning()
        with torch.no_grad():
            ours(shipped)()  # the one-off compile, outside every timing below
    out["shipped"] = {"samples": shipped.samples, "iterations": shipped.iterations,
                      "seconds_per_step": best_seconds(ours(shipped), repeats)}
    if paper:
        out["paper_800x10"] = {"seconds_per_step": best_seconds(ours(CEMConfig.paper()), 1)}

    # FLOP rate inside CEM at the shipped default, beside this machine's matmul rate
    rate = flops / out["shipped"]["seconds_per_step"] / 1e9
    peak = matmul_gflops(256 if tiny else 1024, calls=4, dtype=DTYPES[dtype])
    out["gflop_per_step"] = flops / 1e9
    out["cem_gflops"], out["matmul_gflops"], out["ratio"] = rate, peak, rate / peak

    # the reference way (no KV cache) against ours, same seed. The reference reruns
    # C + t - 1 frames at step t, ours one (the C - 1 first context frames are cached once):
    # a work ratio of C + (H - 1) / 2. With one context frame and H = 1 (the paper's and our
    # default) there is nothing to share: the candidate's first action conditions the context
    # frame's own tokens (block-causal attention within a step). The costs agree to float rounding
    # (max_cost_diff, ~1e-7 in fp32, ~1e-3 in bf16); the plans can still differ (max_plan_diff) where
    # two candidates' costs are that close around the top-k cut: CEM then keeps another elite, and its
    # refit moves on.
    out["reference_vs_ours"] = []
    for c, h in ((1, 1), (1, 3), (4, 1), (4, 3)):
        cfg = CEMConfig.cpu_default(iterations=1, horizon=h, **small)
        t_ref, t_ours = best_seconds(reference(cfg, c), repeats), best_seconds(ours(cfg, c), repeats)
        diff = float((reference(cfg, c)() - ours(cfg, c)()).abs().max())
        out["reference_vs_ours"].append({"context": c, "horizon": h, "reference_s": t_ref, "ours_s": t_ours,
                                         "speedup": t_ref / t_ours, "work_ratio": c + (h - 1) / 2,
                                         "max_cost_diff": cost_diff(cfg, c), "max_plan_diff": diff})

    # batching across episodes, as eval plans its batch_size episodes in one cost call: where the
    # cache has nothing to share (one context frame, horizon 1), this is the default's saving
    episodes = 8
    z_many, s_many, goal_many = (x.expand(episodes, *x.shape[1:]) for x in (z_ctx, state, z_goal))

    def batched() -> torch.Tensor:
        cost = wm.planning_cost(z_many, s_many, goal_many, shipped.horizon)
        return cem(cost, shipped, num_problems=episodes, generator=torch.Generator().manual_seed(0))

    t_one_by_one = best_seconds(lambda: [ours(shipped)() for _ in range(episodes)], repeats)
    t_batched = best_seconds(batched, repeats)
    out["batched_vs_one_by_one"] = {"episodes": episodes, "one_by_one_s": t_one_by_one,
                                    "batched_s": t_batched, "speedup": t_one_by_one / t_batched}

    # scaling: one iteration, samples then horizon
    samples = [16, 32, 64] if tiny else [50, 100, 200, 400, 800]
    ts = [best_seconds(ours(CEMConfig(samples=s, iterations=1)), repeats) for s in samples]
    a, b, r2 = fit_linear(samples, ts)
    out["vs_samples"] = {"samples": samples, "seconds": ts, "fit_r2": r2, "ms_per_sample": 1e3 * b,
                         "intercept_ms": 1e3 * a}
    horizons = [1, 2] if tiny else [1, 2, 3, 4]
    th = [best_seconds(ours(CEMConfig(samples=100, iterations=1, horizon=h)), repeats) for h in horizons]
    a, b, r2 = fit_linear(horizons, th)
    out["vs_horizon"] = {"horizon": horizons, "seconds": th, "fit_r2": r2, "ms_per_step": 1e3 * b,
                         "intercept_ms": 1e3 * a}
    return out


# ---------------------------------------------------------------------------------- simulator CEM
def sim_episode(env, planner: CEMConfig, seed: int, cost: StateCost) -> dict:
    """One episode of CEM on the simulator: the task's full budget, success read at the end."""
    from ami_robot.agent import MPCAgent
    from ami_robot.sim_model import SimCostModel

    obs, info = env.reset(seed=seed)
    model = SimCostModel(env.unwrapped, cost)
    model.set_goals_from_info(info)
    agent = MPCAgent(model, planner, seed=seed)
    agent.reset(info["goal_pixels"])
    budget = env.unwrapped.task_spec.budget
    for _ in range(budget):
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
    return {"seed": seed, "success": bool(info["success"]), "distance": float(info["distance"]),
            "median_plan_s": statistics.median(agent.planning_seconds)}


def bench_sim(tasks: list[str], episodes: int, seed0: int, planner: CEMConfig) -> dict:
    import gymnasium

    import ami_robot.envs  # noqa: F401  (registers ami_robot/<Task>-v0)

    # Reach: the TCP to its goal. Push: the object to its goal, plus the pusher shaping (get
    # behind the object); the simple TCP + object cost failed 3/3 Push episodes at H = 1.
    costs = {"Reach": StateCost(tcp=1.0, object=0.0), "Push": StateCost(tcp=0.0, object=1.0, pusher=0.5)}
    out = {}
    for task in tasks:
        env = gymnasium.make(f"ami_robot/{task}-v0")
        runs = []
        for k in range(episodes):
            runs.append(sim_episode(env, planner, seed0 + k, costs.get(task, StateCost())))
            print(f"{task} {k + 1}/{episodes}: {runs[-1]}", flush=True)
        env.close()
        wins = sum(r["success"] for r in runs)
        out[task] = {"episodes": episodes, "successes": wins, "rate": wins / episodes,
                     "median_distance": statistics.median(r["distance"] for r in runs),
                     "median_plan_s": statistics.median(r["median_plan_s"] for r in runs)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the fastest counts)")
    p.add_argument("--skip-latent", action="store_true")
    p.add_argument("--skip-paper", action="store_true", help="skip the slow 800 x 10 timing")
    p.add_argument("--skip-sim", action="store_true")
    p.add_argument("--tasks", default="Reach,Push")
    p.add_argument("--episodes", type=int, default=20, help="simulator episodes per task")
    p.add_argument("--seed0", type=int, default=10_000, help="first evaluation seed (held-out split)")
    p.add_argument("--sim-samples", type=int, default=32)
    p.add_argument("--sim-iterations", type=int, default=3)
    p.add_argument("--sim-horizon", type=int, default=1)
    p.add_argument("--tiny", action="store_true",
                   help="a random micro model, one repeat, latent part only (CI: it runs, no time asserted)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                   help="the world model's weights and activations in the latent part (energies stay fp32)")
    p.add_argument("--compile", action="store_true",
                   help="plan with the predictor compiled (model.compile=true; the one-off compile untimed)")
    p.add_argument("--chunk-rows", type=int, default=None,
                   help="WorldModel.plan_chunk_rows: candidate rows per predictor call (default the "
                        "model's, 128; 0: all in one call)")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args()
    if args.tiny:
        args.repeats, args.skip_paper, args.skip_sim = 1, True, True

    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_average": os.getloadavg()}
    print(json.dumps(report), flush=True)
    if not args.skip_latent:
        report["latent"] = bench_latent(args.repeats, paper=not args.skip_paper, tiny=args.tiny,
                                        dtype=args.dtype, compile_predictor=args.compile,
                                        chunk_rows=args.chunk_rows)
        print(json.dumps({"latent": report["latent"]}, indent=1), flush=True)
    if not args.skip_sim:
        planner = CEMConfig(samples=args.sim_samples, iterations=args.sim_iterations,
                            horizon=args.sim_horizon, topk=min(10, args.sim_samples))
        report["sim"] = bench_sim(args.tasks.split(","), args.episodes, args.seed0, planner)
        print(json.dumps({"sim": report["sim"]}, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
