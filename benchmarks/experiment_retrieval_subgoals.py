"""Experiment: an agent-made pre-grasp sub-goal, retrieved from the training frames (Grasp).

    python benchmarks/experiment_retrieval_subgoals.py --data runs/reproduce/data/train --episodes 8
    python benchmarks/experiment_retrieval_subgoals.py --data runs/reproduce/data/train --check-seed 10004

The greedy latent planner cannot grasp: the hand must first go down around the object, which
looks less like the goal (object lifted in the hand) than hovering does (bench_expert_energy.py).
Here the agent makes its own waypoint from the goal image alone:
1. retrieve the training frame nearest the goal image (L1 over 4 x 4 pooled latents);
2. in that training episode, walk back to the lowest open-hand frame before it (the robot's own
   state: TCP height and gripper, no object information): a pre-grasp image;
3. plan to the pre-grasp image (gradient, horizon 1, gripper held open: its effect is invisible,
   so a searched gripper only closes at random), then to the goal (CEM, horizon 2).
`--check-seed` stops at the pre-grasp pose and scores hand-made two-step plans with the model,
then plays "close, then up 7.5 cm" in the simulator: does the model see what the real arm does?
The bank (every training frame, pooled) is cached beside the data as retrieval_bank.pt, with the
key of a fixed probe image so that another encoder rebuilds it.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.agent import GoalSchedule
from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.data import load_trajectories
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog, summarize
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC
from ami_robot.policies.retrieval import probe_image
from ami_robot.world_model import WorldModel, pool_features

APPROACH = {"name": "gradient", "starts": 8, "iterations": 20, "horizon": 1,
            "space": {"maxnorm": 0.075, "sampled_dims": (0, 1, 2)}}
LIFT = {"name": "cem", "samples": 128, "iterations": 4, "topk": 10, "horizon": 2, "space": {"maxnorm": 0.075}}


class FrameBank:
    """Pooled latents of every training frame, and the pre-grasp frame for a goal image."""

    def __init__(self, wm: WorldModel, data_dir: str | Path) -> None:
        self.wm, self.data = wm, load_trajectories(data_dir)
        self.grid = (wm.encoder.config.grid,) * 2
        cache = Path(data_dir) / "retrieval_bank.pt"
        # The bank is only valid for the encoder that made it: keep that encoder's probe-image key.
        key = pool_features(wm.encode(probe_image()), self.grid)[0]
        saved = torch.load(cache) if cache.exists() else None
        if isinstance(saved, dict) and torch.allclose(saved["key"], key, atol=1e-4):
            self.latents = saved["latents"]
        else:
            frames = self.data.frames
            self.latents = torch.cat([pool_features(wm.encode(frames[i:i + 512]), self.grid)
                                      for i in range(0, len(frames), 512)])  # (F, 16 D)
            torch.save({"latents": self.latents, "key": key}, cache)
        self.episode = np.repeat(np.arange(self.data.num_episodes), self.data.lengths)

    def pregrasp(self, goal_pixels: np.ndarray, candidates: int = 20) -> tuple[int, int] | None:
        """(nearest frame, its episode's lowest open-hand frame before it), or None."""
        goal = pool_features(self.wm.encode(goal_pixels[None]), self.grid)
        order = (self.latents - goal).abs().mean(1).argsort()[:candidates].tolist()
        for nearest in order:
            frames = np.arange(self.data.starts[self.episode[nearest]], nearest + 1)
            states = self.data.states[frames]
            low_open = frames[(states[:, 6] < 0.1) & (states[:, 2] < 0.06)]
            if len(low_open):
                return nearest, int(low_open[np.argmin(self.data.states[low_open, 2])])
        return None


class PregraspMPC(LatentMPC):
    """Two goals: the retrieved pre-grasp image (`budget` steps, APPROACH), then the goal (LIFT)."""

    def __init__(self, world_model: WorldModel, bank: FrameBank, budget: int = 12) -> None:
        super().__init__(world_model, planner=LIFT)
        self.bank, self.budget = bank, budget
        self.phases = (make_config(**APPROACH), make_config(**LIFT))

    def reset_batch(self, obs, infos, seeds=None, schedules=None) -> None:
        schedules = []
        for info in infos:
            pick = self.bank.pregrasp(info["goal_pixels"])
            images = [info["goal_pixels"]] if pick is None else [self.bank.data.frames[pick[1]],
                                                                  info["goal_pixels"]]
            schedules.append(GoalSchedule(images, budgets=(self.budget,)[: len(images) - 1]))
        super().reset_batch(obs, infos, seeds=seeds, schedules=schedules)

    def act_batch(self, obs) -> np.ndarray:
        config = self.phases[min(s.index for s in self.schedules)]  # budgets switch all at once
        loop = self.agent.loop
        if config.horizon != loop.planner.horizon:
            for e in range(len(loop.plans)):
                loop.forget(e)  # no warm start across horizons
        loop.planner = config
        return super().act_batch(obs)


def check(wm: WorldModel, bank: FrameBank, seed: int, budget: int) -> None:
    policy = PregraspMPC(wm, bank, budget)
    env = gym.make("ami_robot/Grasp-v0", image_size=128, palette="heldout")
    obs, info = env.reset(seed=seed)
    policy.reset(obs, info)
    for _ in range(budget - 1):
        obs, _, _, _, step_info = env.step(policy.act(obs))
    z_goal = wm.encode(info["goal_pixels"][None])
    z_now, state = wm.encode(obs["pixels"][None]), torch.as_tensor(obs["state"])
    cost = wm.planning_cost(z_now[:, None], state[None, None], z_goal, 2)
    plans = {"close, up 7.5 cm": [(0, 0, 0, 0.75), (0, 0, 0.075, 0)],
             "stay open, up 7.5 cm": [(0, 0, 0, 0), (0, 0, 0.075, 0)],
             "up 7.5 cm twice, open": [(0, 0, 0.075, 0), (0, 0, 0.075, 0)],
             "stay, stay": [(0, 0, 0, 0), (0, 0, 0, 0)]}
    print(f"seed {seed}, at the pre-grasp pose: TCP {np.round(obs['state'][:3], 3)}, gripper "
          f"{obs['state'][6]:.2f}, object {np.round(step_info['object_pos'], 3)}")
    for name, steps in plans.items():
        actions = torch.tensor([[[x, y, z, 0, 0, 0, g] for x, y, z, g in steps]], dtype=torch.float32)
        print(f"  model energy after '{name}': {float(cost(actions)):.3f}")
    for action in ([0, 0, 0, 0, 0, 0, 0.75], [0, 0, 0.075, 0, 0, 0, 0]):
        obs, _, _, _, step_info = env.step(np.array(action, np.float32))
    real = float(wm.energy(wm.encode(obs["pixels"][None]), z_goal)[0])
    print(f"  simulator after 'close, up 7.5 cm': success {step_info['success']}, energy {real:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="training shards (ami-robot collect / reproduce)")
    parser.add_argument("--episodes", type=int, default=8, help="Grasp episodes from seed 10000")
    parser.add_argument("--budget", type=int, default=12, help="steps toward the pre-grasp image")
    parser.add_argument("--check-seed", type=int, default=None)
    parser.add_argument("--out", default="runs/experiment_retrieval")
    args = parser.parse_args()
    torch.set_num_threads(2)
    wm = WorldModel.from_checkpoint(shipped_checkpoint_dir())
    bank = FrameBank(wm, args.data)
    if args.check_seed is not None:
        check(wm, bank, args.check_seed, args.budget)
        return
    seeds = list(range(10000, 10000 + args.episodes))
    config = {"approach": APPROACH, "lift": LIFT, "budget": args.budget}
    log = EpisodeLog(Path(args.out) / "episodes.jsonl", config)
    records = run_episodes("Grasp", seeds, partial(PregraspMPC, wm, bank, args.budget), log,
                           method="pregrasp_retrieval", env_kwargs={"image_size": 128, "palette": "heldout"},
                           batch_size=8, progress=False)
    for r in records:
        print(r["seed"], "success" if r["success"] else "fail", f"final distance {r['final_distance']:.3f} m")
    for key, s in summarize(records).items():
        print(key, f"{s['successes']}/{s['episodes']}", f"{s['plan_seconds_median']:.3f} s/action")


if __name__ == "__main__":
    main()
