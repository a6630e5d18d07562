"""LatentMPC: V-JEPA 2-AC planning, the pure latent policy (`policy=latent_mpc`, eval's default).

Every action is chosen by a planner minimising the world model's energy between the predicted
latent and the latent of the goal image the environment gives (or its sub-goal images, each held
for a step budget). Nothing else: no scripted phases, no heads trained on simulator state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ami_robot.agent import GoalSchedule, LatentCostModel, MPCAgent, observed_frames
from ami_robot.planners import PlannerConfig, make_config
from ami_robot.world_model import WorldModel, check_view_weights

GOAL_MODES = ("final", "subgoals")


def goal_images(info: dict[str, Any], goals: str, views: Sequence[str] = ("exterior",)) -> list[np.ndarray]:
    """The goal images an episode's reset info offers, of the camera `views` (stacked when several).
    final: the final goal image alone. subgoals: the env's sub-goal images (e.g. PickPlace: grasped,
    above the target, placed; Grasp: over, around and closed on the object), then the final image;
    envs without sub-goals give the final goal alone. A sub-goal taken when the expert finished
    (PickPlace's placed) is the final moment itself: the final image stands in its place."""
    if goals not in GOAL_MODES:
        raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
    final = observed_frames(info, views, "goal_")
    if goals == "final" or not info.get("subgoal_pixels"):
        return [final]
    subgoals = observed_frames(info, views, "subgoal_")
    steps, end = info.get("subgoal_steps"), info.get("expert_steps")
    if steps is None or end is None:  # an info that does not say when: the last is the final moment
        return [*subgoals[:-1], final]
    return [*(g for g, step in zip(subgoals, steps, strict=True) if step < end), final]


def goal_schedule(info: dict[str, Any], goals: str, budgets: Sequence[int],
                  views: Sequence[str] = ("exterior",), **switching: Any) -> GoalSchedule:
    """`goal_images` as a schedule: `budgets` steps for each image but the last, which keeps the rest
    (more sub-goals than budgets: the last budget again for each). `switching`: GoalSchedule's
    early switches (switch_below, plateau_steps, plateau_tol)."""
    images = goal_images(info, goals, views)
    budgets = tuple(budgets)
    budgets += budgets[-1:] * (len(images) - 1 - len(budgets))
    return GoalSchedule(images, budgets=budgets[: len(images) - 1], **switching)


class LatentMPC:
    """V-JEPA 2-AC planning: the world model's latent energy, a planner, goal images from the env.

    Plans every episode of a batch in one model call per planner iteration (`act_batch`); the
    single-episode `act` is the same computation with a batch of one.
    """

    def __init__(self, world_model: WorldModel, planner: PlannerConfig | dict[str, Any] | None = None,
                 goals: str = "final", subgoal_budgets: Sequence[int] = (4, 10),
                 energy: str = "l1", warm_start: str = "zero", seed: int = 0,
                 switch_below: float | None = None, plateau_steps: int | None = None,
                 view_weights: Sequence[float] | None = None) -> None:
        if isinstance(planner, dict):
            planner = make_config(**planner)
        if goals not in GOAL_MODES:
            raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
        self.check_args(world_model, view_weights)
        self.world_model = world_model
        self.agent = MPCAgent(LatentCostModel(world_model, metric=energy, view_weights=view_weights), planner,
                              warm_start=warm_start, seed=seed)
        self.goals, self.subgoal_budgets = goals, tuple(subgoal_budgets)
        self.switching = {"switch_below": switch_below, "plateau_steps": plateau_steps}

    @staticmethod
    def check_args(world_model: WorldModel | None = None, view_weights: Sequence[float] | None = None,
                   **_: Any) -> None:
        """Refuse view weights that do not fit the world model's views (before any env is made)."""
        if view_weights is None:
            return
        views = getattr(world_model, "views", len(view_weights))
        weights = [float(w) for w in view_weights]
        if len(weights) != views:
            raise ValueError(f"view_weights={weights}: give one weight per camera view the world model "
                             f"reads ({views})")
        try:
            check_view_weights(weights, len(weights))
        except ValueError as exc:
            raise ValueError(f"view_weights={weights}: {exc}") from None

    @property
    def planner(self) -> PlannerConfig:
        return self.agent.planner

    @property
    def schedules(self) -> list[GoalSchedule]:
        return self.agent.schedules

    @property
    def planning_seconds(self) -> list[float]:
        return self.agent.loop.planning_seconds  # per action and episode

    @property
    def energies(self) -> list[list[float]]:
        return self.agent.loop.energies  # per episode, one per step

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
            views = self.agent.model.views
            schedules = [goal_schedule(info, self.goals, self.subgoal_budgets, views, **self.switching)
                         for info in infos]
        self.agent.reset_batch(schedules, seeds)

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7) for E episodes, planned in one batch."""
        return self.agent.act_batch(obs)
