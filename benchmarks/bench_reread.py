"""Why the retrieval policy reads the object again on its way to it: the locator's error at the
first frame, at the frame with the hand over that first reading, and for the mean of the two.

    python benchmarks/bench_reread.py                       # Push, development seeds 20000-20049

The development seeds are held-out (>= 10,000, held-out palette) but not the evaluation's
10000-10049, so choices made here are not tuned on the published rows. The hand goes where the
open-loop policy (`reread=false`) sends it; episodes whose goal image is not read as a carry are
skipped.
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
    parser.add_argument("--task", default="Push")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed-start", type=int, default=20_000)
    parser.add_argument("--within", type=float, default=1.5, help="cm: the count of readings this close")
    args = parser.parse_args()
    torch.set_num_threads(2)
    world_model = WorldModel.from_checkpoint(shipped_checkpoint_dir())
    planner = make_config("gradient")
    env = gym.make(f"ami_robot/{args.task}-v0", image_size=128, palette="heldout")
    names = ("first frame", "hand over the first reading", "mean of the two")
    errors: dict[str, list[float]] = {name: [] for name in names}
    for seed in range(args.seed_start, args.seed_start + args.episodes):
        policy = RetrievalMPC(world_model, planner=planner, locate=True, reread=False, retries=0)
        obs, info = env.reset(seed=seed)
        policy.reset_batch([obs], [info], seeds=[seed])
        if policy.phase(0).name != "over the object":
            continue  # not read as a carry
        first = policy.phase(0).xyz[:2].copy()  # the pick's aim: the first frame's reading
        for _ in range(env.spec.max_episode_steps):
            action = policy.act_batch([obs])[0]
            if policy.phase(0).name != "over the object":
                break  # the hand is over the first reading and about to go down
            obs, _, _, _, info = env.step(action)
        seen = obs["pixels"][None]
        copies = world_model.encode(repainted(seen, policy.config.locate_copies))
        hover = policy.locator.locate(world_model.encode(seen), copies)[0, :2]
        truth = info["object_pos"][:2]
        for name, xy in zip(errors, (first, hover, (first + hover) / 2), strict=True):
            errors[name].append(float(np.linalg.norm(xy - truth)) * 100)
    env.close()
    n = len(errors["first frame"])
    print(f"{args.task}, seeds {args.seed_start}-{args.seed_start + args.episodes - 1}, {n} carried")
    print(f"| reading | x-y error median / p90 / max (cm) | within {args.within} cm |")
    print("|---|---|---|")
    for name, values in errors.items():
        stats = " / ".join(f"{v:.2f}" for v in np.percentile(values, [50, 90, 100]))
        print(f"| {name} | {stats} | {sum(v < args.within for v in values)}/{n} |")


if __name__ == "__main__":
    main()
