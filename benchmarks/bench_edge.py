"""Edge benchmark: one planning step under torch, onnxruntime fp32 and onnxruntime int8, side by side.

    python benchmarks/bench_edge.py                # the shipped model, CEM 128 x 4 at horizons 1 and 3
    python benchmarks/bench_edge.py --tiny         # a random micro model, a tiny CEM (what the test runs)

The model is exported (with its int8 copy) into a temporary folder, as `ami-robot export int8=true`
does. A planning step is what the latent policy does each action: encode the current frame, build
the cost (LatentCostModel, the same class for every backend) and run CEM; the goal is encoded once
per episode and so outside the timing. Each backend plans from the same frames with the same seed,
so the plans differ only where the backends' energies do. Reported per backend:
- seconds per planning step (fastest of --repeats, after a warm-up), and the encoder alone;
- plan agreement with torch: max |first action - torch's| in xyz (m), over the frame pairs;
- energy gap: torch's energy of the backend's plan minus torch's energy of its own plan (>= 0 is
  worse), mean over the pairs; and max |cost - torch cost| over one batch of candidates.
Frames: Reach start and goal images of development seeds (from 20000; 10000-19999 are held out),
or uniform random frames with --tiny. On a shared machine every time is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.agent import LatentCostModel
from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.edge import ExportConfig, OnnxWorldModel, export_onnx
from ami_robot.planners import CEMConfig, cem
from ami_robot.world_model import WorldModel

from timing import best_seconds

BACKENDS = ("torch", "onnx_fp32", "onnx_int8")


def frame_pairs(model: WorldModel, pairs: int, seed_start: int,
                random: bool) -> list[tuple[dict, np.ndarray]]:
    """(observation, goal image) pairs: Reach resets of development seeds, or random frames."""
    if random:
        rng = np.random.default_rng(seed_start)
        size = model.image_size
        return [({"pixels": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                  "state": np.zeros(7, np.float32)}, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                for _ in range(pairs)]
    from ami_robot.episodes import make_env  # rendering only when real frames are asked for

    env = make_env("Reach")
    out = []
    for k in range(pairs):
        obs, info = env.reset(seed=seed_start + k)
        out.append((obs, info["goal_pixels"]))
    env.close()
    return out


def plan_step(cost_model: LatentCostModel, obs: dict, goal: torch.Tensor, planner: CEMConfig,
              seed: int) -> torch.Tensor:
    """One planning step as the latent policy takes it: encode, cost, CEM -> plan (H, 7)."""
    cost = cost_model.batch_cost_fn([obs], [goal], planner.horizon)
    return cem(cost, planner, generator=torch.Generator().manual_seed(seed))


def bench(model: WorldModel, planners: dict[str, CEMConfig], pairs: int, repeats: int, seed_start: int,
          random_frames: bool) -> dict[str, Any]:
    frames = frame_pairs(model, pairs, seed_start, random_frames)
    with tempfile.TemporaryDirectory() as folder:
        card = export_onnx(model, folder, ExportConfig(int8=True))
        models = {"torch": model, "onnx_fp32": OnnxWorldModel(folder),
                  "onnx_int8": OnnxWorldModel(folder, "int8")}
        costs = {name: LatentCostModel(m) for name, m in models.items()}
        goals = {name: [c.encode_goal(g) for _, g in frames] for name, c in costs.items()}
        report: dict[str, Any] = {"export_max_abs_diff": card["max_abs_diff_vs_torch"], "planners": {}}
        obs0 = frames[0][0]
        image = torch.as_tensor(obs0["pixels"])[None]
        report["encode_s"] = {n: best_seconds(lambda m=m: m.encode(image), repeats)
                              for n, m in models.items()}
        for label, planner in planners.items():
            rows: dict[str, Any] = {}
            reference = costs["torch"]
            torch_plans = [plan_step(reference, o, goals["torch"][i], planner, i)
                           for i, (o, _) in enumerate(frames)]
            gen = torch.Generator().manual_seed(0)
            probe = 0.05 * torch.randn(planner.samples, planner.horizon, 7, generator=gen)  # (S, H, 7)
            with torch.no_grad():
                probe_torch = reference.batch_cost_fn([obs0], [goals["torch"][0]], planner.horizon)(probe)
            for name, c in costs.items():
                step_s = best_seconds(lambda c=c, n=name, p=planner: plan_step(c, obs0, goals[n][0], p, 0),
                                      repeats)
                plans = [plan_step(c, o, goals[name][i], planner, i) for i, (o, _) in enumerate(frames)]
                gaps, moves = [], []
                for i, (o, _) in enumerate(frames):
                    energy = reference.batch_cost_fn([o], [goals["torch"][i]], planner.horizon)
                    with torch.no_grad():
                        gaps.append(float(energy(plans[i][None]) - energy(torch_plans[i][None])))
                    moves.append(float((plans[i][0, :3] - torch_plans[i][0, :3]).abs().max()))
                probe_cost = c.batch_cost_fn([obs0], [goals[name][0]], planner.horizon)(probe)
                rows[name] = {"step_s": step_s, "first_action_xyz_max_diff_m": max(moves),
                              "energy_gap_mean": float(np.mean(gaps)),
                              "candidate_cost_max_diff": float((probe_cost - probe_torch).abs().max())}
            report["planners"][label] = rows
    return report


def table(report: dict[str, Any]) -> str:
    lines = ["| planner | backend | s / planning step | vs torch | first action max diff (m) | "
             "energy gap (mean) | max cost diff |", "|---|---|---|---|---|---|---|"]
    for label, rows in report["planners"].items():
        base = rows["torch"]["step_s"]
        for name, r in rows.items():
            lines.append(f"| {label} | {name} | {r['step_s']:.3f} | {base / r['step_s']:.2f}x | "
                         f"{r['first_action_xyz_max_diff_m']:.2g} | {r['energy_gap_mean']:+.2g} | "
                         f"{r['candidate_cost_max_diff']:.2g} |")
    enc = report["encode_s"]
    lines.append("encoder, one frame: " + ", ".join(f"{n} {1e3 * s:.1f} ms" for n, s in enc.items()))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="random micro model, tiny CEM, random frames (CI)")
    p.add_argument("--checkpoint", default=None, help="folder with our weights (default: shipped)")
    p.add_argument("--pairs", type=int, default=8, help="(frame, goal) pairs for plan agreement")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the fastest counts)")
    p.add_argument("--seed-start", type=int, default=20_000, help="development seeds (>= 20000)")
    p.add_argument("--horizons", default="1,3", help="CEM horizons to time")
    p.add_argument("--threads", type=int, default=None, help="torch's and onnxruntime's (default: torch's)")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # onnxruntime sessions take torch's count (edge.runtime.session)
    if args.tiny:
        model = WorldModel.random("micro", "micro")
        planners = {f"CEM 16 x 1, H={h}": CEMConfig(samples=16, iterations=1, topk=4, horizon=h)
                    for h in map(int, args.horizons.split(","))}
        args.pairs, args.repeats = min(args.pairs, 2), 1
    else:
        model = WorldModel.from_checkpoint(args.checkpoint or SHIPPED_DIR)
        planners = {f"CEM 128 x 4, H={h}": CEMConfig.cpu_default(horizon=h)
                    for h in map(int, args.horizons.split(","))}
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
              "model": "random micro" if args.tiny else str(args.checkpoint or SHIPPED_DIR)}
    report |= bench(model, planners, args.pairs, args.repeats, args.seed_start, random_frames=args.tiny)
    print(table(report))
    print(json.dumps({k: report[k] for k in ("torch", "threads", "load_average", "model")}))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
