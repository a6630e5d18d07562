"""Train SAC + HER (Stable-Baselines3) on a task's goal observation and save the model.zip that
`ami-robot bench methods=[sb3] policies.sb3.path=...` scores (docs/rl.md).

    python benchmarks/train_sb3_her.py --task Reach --steps 20000 --out runs/rl/reach_sac_her.zip

Settings close to RL Zoo's for FetchReach (SAC, HER `future` with 4 sampled goals, lr 1e-3, gamma
0.95, batch 256, learning from step 1000, 20k steps) without its observation normalisation; 64x64
networks, one torch thread (more only contend at this size).
Prints the success of the last 100 training episodes every 2000 steps. Needs the `rl` extra.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC, HerReplayBuffer

from ami_robot.envs import TASK_SPECS, make_goal_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="Reach", choices=sorted(TASK_SPECS))
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rotation", action="store_true",
                        help="the env's 7-D action instead of dx, dy, dz, gripper")
    parser.add_argument("--out", type=Path, default=Path("runs/rl/model.zip"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    env = make_goal_env(args.task, rotation=args.rotation)
    model = SAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                learning_rate=1e-3, learning_starts=1000, batch_size=256, gamma=0.95,
                policy_kwargs={"net_arch": [64, 64]}, seed=args.seed, device="cpu")
    start = time.time()
    while model.num_timesteps < args.steps:
        model.learn(total_timesteps=min(2000, args.steps - model.num_timesteps), reset_num_timesteps=False)
        print(f"{model.num_timesteps} steps, {time.time() - start:.0f} s: success of the last 100 training "
              f"episodes {np.mean(model.ep_success_buffer):.2f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
