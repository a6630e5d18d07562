"""Policies that the eval and bench apps run side by side, all behind one small interface.

    reset(obs, info)   start an episode; info is the env's reset info (goal images, sub-goals, ...)
    act(obs) -> action float32 (7,)

A policy that can plan several episodes in one batch also offers `reset_batch(obs, infos)` and
`act_batch(obs) -> (E, 7)`; the runner uses those when present. A user's own policy needs only
reset/act (and an `env` constructor argument if it wants privileged access to the simulator).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ami_robot.agent import GoalSchedule, LatentCostModel, MPCAgent
from ami_robot.planners import PlannerConfig, make_config, plan, shift_plan
from ami_robot.world_model import WorldModel


@runtime_checkable
class Policy(Protocol):
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


GOAL_MODES = ("final", "subgoals")


def goal_schedule(info: dict[str, Any], goals: str, budgets: Sequence[int]) -> GoalSchedule:
    """The goal images an episode's reset info offers, as a schedule.

    final: the final goal image alone. subgoals: the env's sub-goal images (PickPlace: grasped,
    above the target, placed) with `budgets` steps for each but the last, which keeps the rest;
    envs without sub-goals fall back to the final goal.
    """
    if goals not in GOAL_MODES:
        raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
    subgoals = info.get("subgoal_pixels") or []
    if goals == "final" or not subgoals:
        return GoalSchedule([info["goal_pixels"]])
    images = list(subgoals[:-1]) + [info["goal_pixels"]]  # the final image is the last sub-goal
    return GoalSchedule(images, budgets=tuple(budgets)[: len(images) - 1])


class LatentMPC:
    """V-JEPA 2-AC planning: the world model's latent energy, a planner, goal images from the env.

    Plans every episode of a batch in one model call per planner iteration (`act_batch`); the
    single-episode `act` is the same computation with a batch of one.
    """

    def __init__(self, world_model: WorldModel, planner: PlannerConfig | dict[str, Any] | None = None,
                 goals: str = "final", subgoal_budgets: Sequence[int] = (4, 10),
                 energy: str = "l1", warm_start: str = "zero", seed: int = 0) -> None:
        if isinstance(planner, dict):
            planner = make_config(**planner)
        self.world_model = world_model
        self.agent = MPCAgent(LatentCostModel(world_model), planner, warm_start=warm_start, seed=seed)
        self.planner = self.agent.planner
        self.goals, self.subgoal_budgets, self.energy_metric = goals, tuple(subgoal_budgets), energy
        self.warm_start, self.seed = warm_start, seed
        goal_schedule({"goal_pixels": None}, goals, subgoal_budgets)  # validates `goals` early

    @property
    def device(self) -> torch.device:
        return next(self.world_model.parameters()).device

    # -- one episode -------------------------------------------------------------------------------
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.reset_batch([obs], [info])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.act_batch([obs])[0]

    # -- a batch of episodes -----------------------------------------------------------------------
    def reset_batch(self, obs: Sequence[dict[str, np.ndarray]], infos: Sequence[dict[str, Any]],
                    seeds: Sequence[int] | None = None,
                    schedules: Sequence[GoalSchedule] | None = None) -> None:
        """Start E episodes; goals from each reset info (by `goals`), or the given schedules."""
        if schedules is None:
            schedules = [goal_schedule(info, self.goals, self.subgoal_budgets) for info in infos]
        self.schedules = list(schedules)
        seeds = list(seeds) if seeds is not None else [self.seed + i for i in range(len(infos))]
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in seeds]
        self._goal_latents: list[dict[int, torch.Tensor]] = [{} for _ in infos]
        self.plans: list[torch.Tensor | None] = [None] * len(infos)
        self.planning_seconds: list[float] = []
        self.energies: list[list[float]] = [[] for _ in infos]

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7) for E episodes, planned in one batch."""
        wm, e = self.world_model, len(obs)
        start = time.perf_counter()
        goals = []
        for i, schedule in enumerate(self.schedules):
            if schedule.index not in self._goal_latents[i]:
                self._goal_latents[i][schedule.index] = wm.encode(schedule.pixels[None])[0]
            goals.append(self._goal_latents[i][schedule.index])
        z = wm.encode(np.stack([o["pixels"] for o in obs]))  # (E, N, D)
        states = torch.as_tensor(np.stack([o["state"] for o in obs]), dtype=torch.float32)
        cost = wm.planning_cost(z[:, None], states[:, None], torch.stack(goals), self.planner.horizon,
                                metric=self.energy_metric)
        init = None
        if self.warm_start != "none" and all(p is not None for p in self.plans):
            init = torch.stack([shift_plan(p, fill=self.warm_start) for p in self.plans])  # (E, H, 7)
        plans = plan(cost, self.planner, init_mean=init, num_problems=e, generator=self.generators,
                     device=self.device)  # (E, H, 7)
        elapsed = time.perf_counter() - start
        final_energy = cost(plans)  # (E,) the energy each plan reaches
        actions = plans[:, 0].cpu().numpy().astype(np.float32)
        for i, schedule in enumerate(self.schedules):
            energy = float(final_energy[i])
            self.energies[i].append(energy)
            self.plans[i] = None if schedule.step(energy) else plans[i]
        self.planning_seconds.append(elapsed / e)  # seconds per action, shared by the batch
        return actions


class ExpertPolicy:
    """The task's scripted expert with privileged simulator state: the benchmark's upper bound."""

    needs_env = True

    def __init__(self, env: Any, noise_std: float = 0.0, seed: int | None = None) -> None:
        from ami_robot.envs import ScriptedExpert  # the envs' own expert, used as it is

        self.expert = ScriptedExpert(env, noise_std=noise_std, seed=seed)

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.expert.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.expert.act(obs), dtype=np.float32)


class RandomPolicy:
    """Uniform random actions in the env's action Box: the benchmark's floor."""

    def __init__(self, seed: int = 0, low: Sequence[float] | None = None,
                 high: Sequence[float] | None = None) -> None:
        from ami_robot.envs import ACTION_HIGH, ACTION_LOW

        self.low = np.asarray(ACTION_LOW if low is None else low, np.float32)
        self.high = np.asarray(ACTION_HIGH if high is None else high, np.float32)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.rng = np.random.default_rng([self.seed, int(info.get("seed", 0))])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


# State costs that let CEM on the simulator solve each task (benchmarks/bench_planners.py).
SIM_TASK_COSTS: dict[str, dict[str, float]] = {
    "Reach": {"tcp": 1.0, "object": 0.0},
    "Push": {"tcp": 0.0, "object": 1.0, "pusher": 0.5},
}


class SimMPC:
    """CEM with the true simulator as its model and a state cost: the planner's upper bound.

    Each candidate is played in the env's own simulation from a snapshot (privileged), so its
    cost is exact; the gap between this row and the latent planner's is model error.
    """

    needs_env = True

    def __init__(self, env: Any, planner: PlannerConfig | dict[str, Any] | None = None,
                 cost: dict[str, float] | None = None, seed: int = 0) -> None:
        from ami_robot.sim_model import SimCostModel, StateCost

        if isinstance(planner, dict):
            planner = make_config(**planner)
        self.env = env
        state_cost = StateCost(**(cost or SIM_TASK_COSTS.get(env.task_name, {})))
        self.model = SimCostModel(env, state_cost)
        self.agent = MPCAgent(self.model, planner, seed=seed)
        self.seed = seed

    @property
    def planning_seconds(self) -> list[float]:
        return self.agent.planning_seconds

    @property
    def energies(self) -> list[float]:
        return self.agent.energies

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.model.set_goals_from_info(info)
        self.agent.reset(info["goal_pixels"], seed=self.seed + int(info.get("seed", 0)))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.agent.act(obs)
