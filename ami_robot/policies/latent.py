"""LatentMPC: V-JEPA 2-AC planning, the pure latent policy (`policy=latent_mpc`, eval's default).

Every action is chosen by a planner minimising the world model's energy between the predicted
latent and the latent of the goal image the environment gives (or its sub-goal images, each held
for a step budget). From the final goal image alone (`goals="final"`), a task whose sub-goal maker
lies beside the world model (Grasp, Push, PickPlace with the two-view model) first gets the
latents of its intermediate moments from that maker (ami_robot.policies.subgoals), one step
budget each; the others plan flat. Nothing else: no scripted phases, no heads trained on simulator state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.agent import GoalSchedule, LatentCostModel, MPCAgent, observed_frames
from ami_robot.planners import PlannerConfig, make_config
from ami_robot.policies.subgoals import SubgoalMakers, TrainingFrames
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
    return GoalSchedule(images, budgets=step_budgets(budgets, len(images) - 1), **switching)


def step_budgets(budgets: Sequence[int], n: int) -> list[int]:
    """`n` step budgets: those given, then the last again for each one more."""
    budgets = list(budgets)
    return (budgets + budgets[-1:] * (n - len(budgets)))[:n]


class LatentMPC:
    """V-JEPA 2-AC planning: the world model's latent energy, a planner, goal images from the env.

    Plans every episode of a batch in one model call per planner iteration (`act_batch`); the
    single-episode `act` is the same computation with a batch of one.
    """

    def __init__(self, world_model: WorldModel, planner: PlannerConfig | dict[str, Any] | None = None,
                 goals: str = "final", subgoal_budgets: Sequence[int] = (4, 10),
                 energy: str = "l1", warm_start: str = "zero", seed: int = 0,
                 switch_below: float | None = None, plateau_steps: int | None = None,
                 view_weights: Sequence[float] | None = None, subgoal_maker: str | None = "auto",
                 subgoal_frames: int = 64) -> None:
        """subgoal_maker: where goals="final" finds the tasks' sub-goal makers: "auto" beside the world
        model, a folder holding subgoals_<Task>.safetensors, or None to plan flat toward the final
        image. subgoal_frames: training resets whose frames show the made sub-goals to people (the
        nearest real frame of each; 0: the final image stands in). Neither changes another mode."""
        if isinstance(planner, dict):
            planner = make_config(**planner)
        if goals not in GOAL_MODES:
            raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
        self.check_args(world_model, view_weights, subgoal_maker, subgoal_frames)
        self.world_model = world_model
        self.agent = MPCAgent(LatentCostModel(world_model, metric=energy, view_weights=view_weights), planner,
                              warm_start=warm_start, seed=seed)
        self.goals, self.subgoal_budgets = goals, tuple(subgoal_budgets)
        self.switching = {"switch_below": switch_below, "plateau_steps": plateau_steps}
        folder = getattr(world_model, "checkpoint_dir", None) if subgoal_maker == "auto" else subgoal_maker
        self.makers = SubgoalMakers(world_model, folder)
        self.subgoal_frames = subgoal_frames
        self._frames: dict[str, TrainingFrames] = {}
        self._made: list[list[dict[str, Any]]] = []
        self._making_seconds = 0.0

    @staticmethod
    def check_args(world_model: WorldModel | None = None, view_weights: Sequence[float] | None = None,
                   subgoal_maker: str | None = "auto", subgoal_frames: int = 64, **_: Any) -> None:
        """Refuse view weights that do not fit the world model's views, a sub-goal maker folder that
        is not there and a negative frame count (before any env is made)."""
        if subgoal_maker not in (None, "auto") and not Path(str(subgoal_maker)).is_dir():
            raise ValueError(f"subgoal_maker={subgoal_maker!r}: no such folder; give a folder holding "
                             "subgoals_<Task>.safetensors, auto (beside the world model) or null (plan flat)")
        if isinstance(subgoal_frames, bool) or not isinstance(subgoal_frames, int) or subgoal_frames < 0:
            raise ValueError(f"subgoal_frames={subgoal_frames!r}: give a whole number of training resets "
                             ">= 0")
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
        self._made, self._making_seconds = [[] for _ in obs], 0.0
        if schedules is None:
            views = self.agent.model.views
            schedules = [goal_schedule(info, self.goals, self.subgoal_budgets, views, **self.switching)
                         for info in infos]
            if self.goals == "final":
                schedules = self._made_schedules(obs, infos, schedules)
        self.agent.reset_batch(schedules, seeds)

    @torch.no_grad()
    def _made_schedules(self, obs: Sequence[dict[str, np.ndarray]], infos: Sequence[dict[str, Any]],
                        schedules: list[GoalSchedule]) -> list[GoalSchedule]:
        """The episodes whose task has a maker: its made latents, one budget each, then the final image."""
        tasks = [info.get("task") for info in infos]
        made = [i for i, task in enumerate(tasks) if self.makers.get(task) is not None]
        if not made:
            return schedules
        views = self.agent.model.views
        for task in {tasks[i] for i in made}:  # for people, outside the planning time
            if self.subgoal_frames and task not in self._frames:
                size = observed_frames(obs[made[0]], views).shape[1]
                self._frames[task] = TrainingFrames.collect(self.world_model, task, self.subgoal_frames, size,
                                                             views)
        started = time.perf_counter()
        z_first = self.world_model.encode(np.stack([observed_frames(obs[i], views) for i in made]))
        z_goal = [self.world_model.encode(schedules[i].goals[-1]) for i in made]  # a user's may be any size
        latents = [self.makers.make(tasks[i], z_first[j:j + 1], z_goal[j]) for j, i in enumerate(made)]
        self._making_seconds = (time.perf_counter() - started) / len(obs)  # counts as planning
        for i, (z, moments) in zip(made, latents, strict=True):
            final = schedules[i].goals[-1]
            shown = [(final, None, None)] * len(moments)
            if tasks[i] in self._frames:
                frames = self._frames[tasks[i]]
                shown = [(frames.frames[k], frames.labels[k], l1) for k, l1 in frames.nearest(z)]
            schedules[i] = GoalSchedule([*(image for image, _, _ in shown), final],
                                        budgets=step_budgets(self.subgoal_budgets, len(moments)),
                                        latents=[*z[:, None], None], **self.switching)
            self._made[i] = [{"moment": m, "shown_by": label, "l1": None if l1 is None else round(l1, 4),
                              "image": image} for m, (image, label, l1) in zip(moments, shown, strict=True)]
        return schedules

    def made_subgoals(self, index: int = 0) -> list[dict[str, Any]]:
        """The sub-goals made at reset for episode `index` of the batch, in order (none: it plans toward
        the env's images or flat): `moment`, `shown_by` (the training frame nearest its latent, or
        None), `l1` (their mean latent L1) and `image` (that frame, views stacked; else the final image)."""
        return self._made[index] if index < len(self._made) else []

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7) for E episodes, planned in one batch."""
        actions = self.agent.act_batch(obs)
        if self._making_seconds:  # sub-goal making counts as planning, on the first action
            self.agent.loop.planning_seconds[-1] += self._making_seconds
            self._making_seconds = 0.0
        return actions
