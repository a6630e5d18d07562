"""Experiment: the agent makes its own sub-goals from the final goal image, on development seeds.

    ami-robot train-subgoals task=PickPlace            # the maker (ami_robot/train/subgoals.py)
    python benchmarks/experiment_subgoal_maker.py eval --task PickPlace --dtype bfloat16 --gripper-snap

eval (the makers in --makers, default beside the two-view model): development seeds (20,000+),
held-out palette; the env gives the final goal image alone (subgoals=None). LatentMPC with
goals="final", as `ami-robot eval policy.goals=final`: at reset the maker turns the first frame and
the goal image into one latent per moment but the last; the pure latent planner (eval's default:
iCEM 64 x 3, whole gripper moves, --budget steps each) plans toward them in order, then toward the
final image. (Sessions 18-19 made the shipped makers with this script's former data, train and
export stages, which `ami-robot train-subgoals` now runs, unchanged but for a seeded init.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_diagnosis import action_space, add_model_args, development_model  # sibling scripts

from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC
from ami_robot.policies.subgoals import MAKER_FILE
from ami_robot.weights import load_subgoal_maker

VIEWS = ("exterior", "wrist")


def evaluate(wm, args: argparse.Namespace, makers: Path, out: Path) -> None:
    _, card = load_subgoal_maker(makers / MAKER_FILE.format(task=args.task))
    planner = make_config(args.planner, samples=args.samples, iterations=args.iterations, horizon=1,
                          space=action_space(args))
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    env_kwargs = {"palette": "heldout", "views": VIEWS, "image_size": 64, "subgoals": None}
    config = {"task": args.task, "maker": card["sha256"], "budget": args.budget, "planner": str(planner),
              "dtype": args.dtype}
    log = EpisodeLog(out / "episodes.jsonl", config)
    policy = LatentMPC(wm, planner, goals="final", subgoal_budgets=(args.budget,), subgoal_maker=makers,
                       subgoal_frames=0)
    records = run_episodes(args.task, seeds, lambda: policy, log, "made_subgoals", env_kwargs=env_kwargs,
                           batch_size=args.batch_size)
    wins = sum(r["success"] for r in records)
    misses = [(r["seed"], round(100 * r["final_distance"], 1)) for r in records if not r["success"]]
    seconds = np.median([s for r in records for s in r.get("plan_seconds", [0.0])])
    made = [m["moment"] for m in records[0].get("subgoals", [])] if records else []
    print(f"{args.task} from the final image, made sub-goals {made}: "
          f"{wins}/{len(records)}, median {seconds:.2f} s/action; misses (seed, cm): {misses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["eval"])
    parser.add_argument("--task", default="PickPlace", choices=["Grasp", "Push", "PickPlace"])
    parser.add_argument("--out", default="runs/subgoals")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--seed-start", type=int, default=20000, help="eval: development seeds, 20,000+")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--budget", type=int, default=5, help="eval: steps per made sub-goal")
    parser.add_argument("--planner", default="icem")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--makers", default="checkpoints/two_view",
                        help="the folder of subgoals_<task>.safetensors (default: the model's)")
    add_model_args(parser)
    args = parser.parse_args()
    if args.checkpoint is None:
        args.checkpoint = "checkpoints/two_view"
    args.views = VIEWS
    wm, _ = development_model(parser, args)
    evaluate(wm, args, Path(args.makers), Path(args.out) / f"{args.task}_eval")


if __name__ == "__main__":
    main()
