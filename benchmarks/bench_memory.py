"""What the retrieval memory reads from goal images: the hand's position and whether it holds something.

    python benchmarks/bench_memory.py                       # training-split seeds 5000-5023, train palette
    python benchmarks/bench_memory.py --split eval          # held-out seeds from 10000, held-out palette

For every task's goal image (and PickPlace's three sub-goal images) it retrieves the 10 nearest
training frames from the shipped memory and prints, per kind of goal image: the median distance
between the neighbours' median TCP and the TCP the goal image was taken at, and how many of the
10 neighbours hold something (fingers stopped short of closed) or are open, as counts 0..10.
The retrieval policy's rules were set from the training split (policies/retrieval/phases.py).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.policies.retrieval import FrameMemory
from ami_robot.world_model import WorldModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("train", "eval"), default="train")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--neighbours", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    wm = WorldModel.from_checkpoint(shipped_checkpoint_dir())
    memory = FrameMemory.load(shipped_checkpoint_dir() / "memory.safetensors")
    start, palette = (5000, "train") if args.split == "train" else (10_000, "heldout")
    rows: dict[str, dict[str, list]] = {}
    for task in ("Reach", "Grasp", "Push", "PickPlace"):
        env = gym.make(f"ami_robot/{task}-v0", image_size=128, palette=palette)
        for seed in range(start, start + args.episodes):
            _, info = env.reset(seed=seed)
            goals = [(task, info["goal_pixels"], info["goal_state"][:3])]
            if task == "PickPlace":
                names = ("PickPlace grasped", "PickPlace above target", "PickPlace placed")
                goals = list(zip(names, info["subgoal_pixels"], [s[:3] for s in info["subgoal_states"]],
                                 strict=True))
            for name, pixels, tcp in goals:
                found = memory.retrieve(wm.encode(pixels[None])[0], args.neighbours)
                row = rows.setdefault(name, {"error": [], "holding": [], "open": []})
                row["error"].append(float(np.linalg.norm(found.xyz - tcp)))
                row["holding"].append(found.holding)
                row["open"].append(found.open)
        env.close()
    print(f"{args.split} split, {args.episodes} seeds from {start}, {args.neighbours} neighbours")
    print("| goal image | TCP error median (cm) | goals with 0..10 neighbours holding | ... open |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        held = np.bincount(row["holding"], minlength=args.neighbours + 1).tolist()
        opened = np.bincount(row["open"], minlength=args.neighbours + 1).tolist()
        print(f"| {name} | {100 * np.median(row['error']):.1f} | {held} | {opened} |")


if __name__ == "__main__":
    main()
