"""Where pure latent planning loses a task: the same CEM over three models of the world.

    python benchmarks/bench_diagnosis.py --tasks Grasp --episodes 8
    python benchmarks/bench_diagnosis.py --tasks Grasp PickPlace --views exterior wrist --subgoals all
    python benchmarks/bench_diagnosis.py --rows sim_frames --samples 64 --iterations 3 --out runs/diag

Rows, each run on the same development seeds (20,000+) and held-out palette:
- sim_state:   CEM on the simulator with a state cost (SimMPC): what the planner alone can do.
- sim_frames:  CEM on the simulator's real frames, scored by the latent energy to the goal images
               (SimLatentMPC): the latent planner with a perfect predictor. Below sim_state, the
               energy or the goal images do not show the way; the encoder and sub-goals are to blame.
- world_model: CEM on the world model (LatentMPC): below sim_frames, the predictor is to blame.

--subgoals: none (the final goal image only), default (the env's default sub-goals) or all (every
moment the task's expert marks, `subgoal_events`). A sub-goal is left after --budget steps, or
earlier when the plan's energy falls to --switch-below. --views picks the cameras the encoder reads;
a one-view checkpoint's encoder then reads each view (sim_frames only: world_model needs a predictor
of those views, --checkpoint).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from bench_expert_energy import load_model  # a sibling script (benchmarks/ is on sys.path)

from ami_robot.apps.common import DTYPES
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC, SimLatentMPC, SimMPC

ROWS = ("sim_state", "sim_frames", "world_model")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options this and bench_ranking.py share: the planner's action space and the checkpoint."""
    parser.add_argument("--sampled-dims", nargs="+", type=int, default=[0, 1, 2, 6],
                        help="action dims the planner searches (V-JEPA 2-AC: xyz and gripper; 5 adds yaw)")
    parser.add_argument("--max-rotation", type=float, default=0.1, help="rad a step, if searched")
    parser.add_argument("--maxnorm", type=float, default=0.075, help="m the hand moves at most a step")
    parser.add_argument("--xyz-std", type=float, default=None,
                        help="the planner's initial std of the hand's move, m (default: --maxnorm)")
    parser.add_argument("--gripper-snap", action="store_true",
                        help="a planned gripper move is made whole (+-0.75): ActionSpace.gripper_snap")
    parser.add_argument("--checkpoint", default=None, help="folder with our weights (default: shipped)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="the world model's compute type (model.dtype); energies stay float32")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (1 each for two runs side by side)")
    parser.add_argument("--compile", action="store_true",
                        help="plan with the predictor compiled (model.compile=true; faster in float32)")


def action_space(args: argparse.Namespace) -> dict:
    return {"sampled_dims": args.sampled_dims, "max_rotation": args.max_rotation, "maxnorm": args.maxnorm,
            "gripper_snap": args.gripper_snap, "xyz_std": args.xyz_std}


def development_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple:
    """Refuse evaluation seeds, then load the checkpoint for `--views` (bench_expert_energy.load_model)."""
    if args.seed_start < 20000:
        parser.error("tune on the development seeds (--seed-start >= 20000); 10,000+ are for published rows")
    torch.set_num_threads(args.threads)
    wm, predicts = load_model(args.checkpoint, len(args.views), DTYPES[args.dtype])
    if args.compile and predicts:
        wm.compile_planning()
    return wm, predicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["Grasp"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--seed-start", type=int, default=20000, help="development seeds: 20,000+")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    parser.add_argument("--image-size", type=int, default=64,
                        help="rendered px (eval renders 128 and the model resizes to its 64; rendering "
                             "every candidate of sim_frames at 128 costs ~4x)")
    parser.add_argument("--subgoals", default="all", choices=["none", "default", "all"])
    parser.add_argument("--budget", type=int, default=5, help="steps per sub-goal")
    parser.add_argument("--switch-below", type=float, default=None)
    parser.add_argument("--plateau-steps", type=int, default=None,
                        help="leave a sub-goal early when its energy has not improved for this many steps")
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--planner-option", action="append", default=[], metavar="FIELD=NUMBER",
                        help="another numeric field of the planner config, e.g. momentum_std=0.1")
    parser.add_argument("--view-weights", nargs="+", type=float, default=None,
                        help="each view's weight in the energy (policy.view_weights; default: tokens alike)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="world_model episodes planned in one batch (eval's batch_size); sim rows: one")
    add_model_args(parser)
    parser.add_argument("--out", default="runs/diagnosis", help="episodes.jsonl per task and row (resumes)")
    args = parser.parse_args()
    views = tuple(args.views)
    wm, predicts = development_model(parser, args)
    if "world_model" in args.rows and not predicts:
        parser.error(f"world_model needs a predictor of {len(views)} view(s): give --checkpoint")
    options = {}
    for option in args.planner_option:
        field, _, value = option.partition("=")
        try:
            options[field] = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            parser.error(f"--planner-option {option}: give FIELD=NUMBER, e.g. momentum_std=0.1")
    try:
        planner = make_config(args.planner, samples=args.samples, iterations=args.iterations,
                              horizon=args.horizon, space=action_space(args), **options)
    except (TypeError, ValueError) as exc:
        parser.error(f"--planner {args.planner} with {options}: {exc}")
    goals = "final" if args.subgoals == "none" else "subgoals"
    schedule = {"goals": goals, "subgoal_budgets": (args.budget,), "switch_below": args.switch_below,
                "plateau_steps": args.plateau_steps, "view_weights": args.view_weights}
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    table = []
    for task in args.tasks:
        env_kwargs = {"palette": "heldout", "views": views, "image_size": args.image_size,
                      "subgoals": "all" if args.subgoals == "all" else None}
        factories = {
            "sim_state": lambda env: SimMPC(env, planner),
            "sim_frames": lambda env: SimLatentMPC(env, wm, planner, **schedule),
            "world_model": lambda: LatentMPC(wm, planner, subgoal_maker=None, **schedule),  # the env's goals
        }
        cells = [task]
        for row in args.rows:
            config = {"task": task, "row": row, "planner": dataclasses.asdict(planner), "env": env_kwargs,
                      "subgoals": args.subgoals, "budget": args.budget, "switch_below": args.switch_below,
                      "plateau_steps": args.plateau_steps, "view_weights": args.view_weights,
                      "checkpoint": args.checkpoint, "dtype": args.dtype}
            log = EpisodeLog(Path(args.out) / task / row / "episodes.jsonl", config)
            batch = args.batch_size if row == "world_model" else 1
            records = run_episodes(task, seeds, factories[row], log, row, env_kwargs=env_kwargs,
                                   batch_size=batch)
            wins = sum(r["success"] for r in records)
            seconds = np.median([s for r in records for s in r.get("plan_seconds", [0.0])])
            cells.append(f"{wins}/{len(records)} ({seconds:.2f} s)")
        table.append("| " + " | ".join(cells) + " |")
    print(f"planner {args.planner} {args.samples} x {args.iterations}, horizon {args.horizon}; "
          f"views {views} at {args.image_size} px; sub-goals {args.subgoals}, {args.budget} steps each; "
          f"seeds {seeds[0]}-{seeds[-1]}")
    print("| task | " + " | ".join(f"{r} (median s/action)" for r in args.rows) + " |")
    print("|---|" + "---|" * len(args.rows))
    print("\n".join(table))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.json").write_text(json.dumps({"args": vars(args), "table": table}))


if __name__ == "__main__":
    main()
