"""How well the shipped locator reads where the object is, and what the retrieval policy decides.

    python benchmarks/bench_locator.py                      # held-out seeds 10000-10049, held-out palette
    python benchmarks/bench_locator.py --copies 0           # without the repainted copies (median)

For each task's first frame and goal image it prints the locator's object x-y error (cm) now and
in the goal (Push and PickPlace, where the goal moves the object), the move it reads between the
two against the true one, and how often the retrieval policy would carry the object
(its phases start with the approach, `--threshold`): all of Push and PickPlace should, no Reach or
Grasp episode should (Grasp's goals lift the object: not a carry whatever the move).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.planners import make_config
from ami_robot.policies import RetrievalMPC
from ami_robot.policies.retrieval import repainted
from ami_robot.world_model import WorldModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed-start", type=int, default=10_000)
    parser.add_argument("--palette", default="heldout")
    parser.add_argument("--copies", type=int, default=8, help="repainted copies per image (RetrievalMPC)")
    parser.add_argument("--threshold", type=float, default=0.05, help="RetrievalMPC.move_threshold (m)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    world_model = WorldModel.from_checkpoint(shipped_checkpoint_dir())
    policy = RetrievalMPC(world_model, planner=make_config("gradient"), locate=True,
                          locate_copies=args.copies, move_threshold=args.threshold)
    print("| task | carried | object now: x-y error median / p90 / max (cm) | in the goal image "
          "| move read: min / median / max (cm) | true move: min / median / max (cm) |")
    print("|---|---|---|---|---|---|")
    for task in ("Reach", "Grasp", "Push", "PickPlace"):
        env = gym.make(f"ami_robot/{task}-v0", image_size=128, palette=args.palette)
        carried, now_error, goal_error, read_move, true_move = 0, [], [], [], []
        for seed in range(args.seed_start, args.seed_start + args.episodes):
            obs, info = env.reset(seed=seed)
            images = np.stack([obs["pixels"], info["goal_pixels"]])
            copies = world_model.encode(repainted(images, args.copies)) if args.copies else None
            now, there = policy.locator.locate(world_model.encode(images), copies)[:, :3]
            phases = policy.waypoints([info["goal_pixels"]], closed=False, pixels=obs["pixels"])
            carried += phases[0][0].reads_object  # the policy's phases start with the approach
            now_error.append(np.linalg.norm(now[:2] - info["object_pos"][:2]) * 100)
            goal_error.append(np.linalg.norm(there[:2] - env.unwrapped.goal.position[:2]) * 100)
            read_move.append(np.linalg.norm(there[:2] - now[:2]) * 100)
            true_move.append(np.linalg.norm(env.unwrapped.goal.position[:2] - info["object_pos"][:2]) * 100)
        env.close()

        def stats(errors: list[float], percentiles: tuple[int, ...] = (50, 90, 100)) -> str:
            return " / ".join(f"{v:.1f}" for v in np.percentile(errors, percentiles))

        moved = task in ("Push", "PickPlace")  # only there does the goal show the object elsewhere
        goal = stats(goal_error) if moved else "-"
        read, true = stats(read_move, (0, 50, 100)), stats(true_move, (0, 50, 100)) if moved else "0"
        print(f"| {task} | {carried}/{args.episodes} | {stats(now_error)} | {goal} | {read} | {true} |")


if __name__ == "__main__":
    main()
