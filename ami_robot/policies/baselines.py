"""The benchmark's reference rows (EVAL_PROTOCOL.md), in the same harness and on the same seeds.

RandomPolicy is the floor; ExpertPolicy, the envs' scripted expert with privileged state, the
upper bound; SimMPC, CEM with the true simulator as its model, the upper bound for the planner
alone; SimLatentMPC, the same planner on the simulator's real frames scored by the latent energy
to the env's goal images, the latent planner with a perfect predictor (its gap to SimMPC is what the
frames and goal images show; its gap to LatentMPC, the predictor's error). The privileged ones take
the environment as their `env` argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ami_robot.agent import MPCAgent
from ami_robot.envs import ACTION_HIGH, ACTION_LOW, ScriptedExpert
from ami_robot.planners import PlannerConfig, make_config
from ami_robot.policies.latent import GOAL_MODES, goal_schedule
from ami_robot.sim_model import SimCostModel, SimFramesCostModel, StateCost


class RandomPolicy:
    """Uniform random actions in the env's action Box: the benchmark's floor."""

    def __init__(self, seed: int = 0, low: Sequence[float] | None = None,
                 high: Sequence[float] | None = None) -> None:
        self.low = np.asarray(ACTION_LOW if low is None else low, np.float32)
        self.high = np.asarray(ACTION_HIGH if high is None else high, np.float32)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.rng = np.random.default_rng([self.seed, int(info.get("seed", 0))])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class ExpertPolicy:
    """The task's scripted expert with privileged simulator state: the benchmark's upper bound."""

    def __init__(self, env: Any, noise_std: float = 0.0, seed: int | None = None) -> None:
        self.expert = ScriptedExpert(env, noise_std=noise_std, seed=seed)  # the envs' own, used as it is

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.expert.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.expert.act(obs), dtype=np.float32)


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

    def __init__(self, env: Any, planner: PlannerConfig | dict[str, Any] | None = None,
                 cost: dict[str, float] | None = None, seed: int = 0) -> None:
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


class SimLatentMPC:
    """The latent planner with a perfect predictor: candidates played in the simulator, their real
    end frames scored by the world model's energy to the env's goal (or sub-goal) images."""

    def __init__(self, env: Any, world_model: Any, planner: PlannerConfig | dict[str, Any] | None = None,
                 goals: str = "final", subgoal_budgets: Sequence[int] = (4, 10), energy: str = "l1",
                 seed: int = 0, switch_below: float | None = None, plateau_steps: int | None = None,
                 view_weights: Sequence[float] | None = None) -> None:
        if isinstance(planner, dict):
            planner = make_config(**planner)
        if goals not in GOAL_MODES:
            raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
        self.model = SimFramesCostModel(env, world_model, metric=energy, view_weights=view_weights)
        self.agent = MPCAgent(self.model, planner, seed=seed)
        self.goals, self.subgoal_budgets, self.seed = goals, tuple(subgoal_budgets), seed
        self.switching = {"switch_below": switch_below, "plateau_steps": plateau_steps}

    @property
    def planning_seconds(self) -> list[float]:
        return self.agent.planning_seconds

    @property
    def energies(self) -> list[float]:
        return self.agent.energies

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        schedule = goal_schedule(info, self.goals, self.subgoal_budgets, self.model.views, **self.switching)
        self.agent.reset(schedule, seed=self.seed + int(info.get("seed", 0)))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.agent.act(obs)
