"""The receding-horizon loop every planning policy runs, and the goal-image agent built on it.

Receding horizon, as V-JEPA 2-AC plans: at every step plan H actions toward the current target,
execute the first, re-plan from the next observation with the previous plan shifted by one step
as the warm start. `RecedingHorizon` is that loop for E episodes planned in one batch; the latent
policy, the retrieval policy and the simulator baseline all run it (ami_robot.policies).

`MPCAgent` drives it toward goal images over a `CostModel`: the latent world model
(`LatentCostModel`), the simulator (`ami_robot.sim_model.SimCostModel`) or any model with the same
two methods. Goals come from a `GoalSchedule`: one goal image, or sub-goal images with step
budgets and optional early switching; a hierarchical agent that makes its own sub-goals can
subclass it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ami_robot.envs import VIEWS, stack_views
from ami_robot.planners import CEMConfig, CostFn, PlannerConfig, plan, shift_plan

WARM_STARTS = ("zero", "repeat", "none")  # shift_plan's fills, or no warm start


class RecedingHorizon:
    """E episodes planned in one batch: `reset(seeds)`, then each step `act(cost) -> actions (E, 7)`.

    A step plans H actions for every episode in one planner call (`cost` scores all candidates,
    E*S rows episode-major) and returns the first of each. The next step's initial mean is the
    previous plans shifted by one step (`warm_start`), when every episode has one: the batch starts
    from one mean, so an episode whose target changed (`forget`) starts cold and the others with
    it, as every published row was measured. Each episode has its own generator, so its plan does
    not depend on which episodes share its batch.

    After every step: `plans[e]` (H, 7), `energies[e]` one entry more (the cost its plan reaches)
    and `planning_seconds` one entry more (the step's seconds, from `started`, per episode).
    """

    def __init__(self, planner: PlannerConfig | None = None, *, warm_start: str = "zero",
                 device: torch.device | str | None = None) -> None:
        if warm_start not in WARM_STARTS:
            raise ValueError(f"warm_start must be 'zero', 'repeat' or 'none', got {warm_start!r}")
        self.planner = planner if planner is not None else CEMConfig.cpu_default()
        self.warm_start = warm_start
        self.device = torch.device(device) if device is not None else None
        self.reset([0])

    @property
    def horizon(self) -> int:
        return self.planner.horizon

    def reset(self, seeds: Sequence[int]) -> None:
        """Start len(seeds) episodes, episode e's planner noise seeded by seeds[e]."""
        self.generators = [torch.Generator(self.device or "cpu").manual_seed(int(s)) for s in seeds]
        self.plans: list[torch.Tensor | None] = [None] * len(seeds)
        self.energies: list[list[float]] = [[] for _ in seeds]
        self.planning_seconds: list[float] = []

    def forget(self, e: int) -> None:
        """Episode e's target changed: its last plan is no warm start for the next."""
        self.plans[e] = None

    def act(self, cost: CostFn, started: float | None = None) -> np.ndarray:
        """Plan every episode against `cost` and return their first actions, float32 (E, 7).

        started: the `time.perf_counter()` at which this step's work began (encoding the frames,
        reading targets), so that `planning_seconds` counts it; default now.
        """
        started = time.perf_counter() if started is None else started
        e = len(self.plans)
        init = None
        if self.warm_start != "none" and all(p is not None for p in self.plans):
            init = torch.stack([shift_plan(p, fill=self.warm_start) for p in self.plans])  # (E, H, 7)
        if e == 1:  # the planners' one-problem form, (H, 7): the same plan as a batch of one
            plans = plan(cost, self.planner, init_mean=None if init is None else init[0],
                         generator=self.generators[0], device=self.device)[None]  # (1, H, 7)
        else:
            plans = plan(cost, self.planner, init_mean=init, num_problems=e, generator=self.generators,
                         device=self.device)  # (E, H, 7)
        self.planning_seconds.append((time.perf_counter() - started) / e)
        with torch.no_grad():
            reached = cost(plans)  # (E,) the energy each plan reaches
        for i in range(e):
            self.plans[i] = plans[i]
            self.energies[i].append(float(reached[i]))
        return plans[:, 0].detach().cpu().numpy().astype(np.float32)


class CostModel(Protocol):
    """What MPCAgent needs of a model for one episode: a goal encoding and a cost over actions.

    A model may also offer `batch_cost_fn(obs, goals, horizon)`: E episodes' costs as one, rows
    episode-major, in one call (LatentCostModel); MPCAgent then plans a batch with one model call
    per planner iteration.
    """

    def encode_goal(self, goal_pixels: np.ndarray) -> Any:
        """goal_pixels uint8 (H, W, 3) -> whatever cost_fn compares against."""
        ...

    def cost_fn(self, obs: dict, goal: Any, horizon: int) -> CostFn:
        """The cost of action sequences (B, horizon, 7) -> (B,) from observation `obs` to `goal`."""
        ...


def batch_cost_fn(model: CostModel, obs: Sequence[dict], goals: Sequence[Any], horizon: int) -> CostFn:
    """E episodes' costs as one (E*S, horizon, 7) -> (E*S,): the model's own batched cost, else
    each episode's cost on its own rows."""
    if hasattr(model, "batch_cost_fn"):
        return model.batch_cost_fn(obs, goals, horizon)
    costs = [model.cost_fn(o, g, horizon) for o, g in zip(obs, goals, strict=True)]
    if len(costs) == 1:
        return costs[0]

    def cost(actions: torch.Tensor) -> torch.Tensor:
        return torch.cat([c(rows) for c, rows in zip(costs, actions.chunk(len(costs)), strict=True)])

    return cost


def observed_frames(frames: dict[str, Any], views: Sequence[str], prefix: str = "") -> Any:
    """The frames a world model of these views reads from an observation or reset info (prefix
    "goal_" or "subgoal_"): one view's as they are, several stacked top to bottom (envs.stack_views)."""
    try:
        return stack_views(frames, views, prefix)
    except KeyError as missing:
        raise ValueError(f"the world model reads the camera views {tuple(views)}, but there is no {missing}: "
                         f"make the environment with views={tuple(views)}") from None


class LatentCostModel:
    """The V-JEPA 2-AC energy: the distance (`metric`, L1 as released) between the predicted latent
    of the last planned step and the goal image's latent, predicted by a `WorldModel` from the
    current frame and state. Context is the current frame only (C = 1, as the paper plans).
    A world model of several views reads each observation's `views` stacked; goal images come
    stacked the same way; `view_weights` weigh each view's share of the energy (WorldModel.energy).
    """

    def __init__(self, world_model: Any, metric: str = "l1",
                 view_weights: Sequence[float] | None = None) -> None:
        self.world_model = world_model
        self.metric = metric
        self.view_weights = None if view_weights is None else tuple(view_weights)

    @property
    def device(self) -> torch.device:
        return next(self.world_model.parameters()).device

    @property
    def views(self) -> tuple[str, ...]:
        """The camera views the world model reads, in its order (exterior first)."""
        return VIEWS[: getattr(self.world_model, "views", 1)]

    @torch.no_grad()
    def encode_goal(self, goal_pixels: np.ndarray) -> torch.Tensor:
        """goal_pixels uint8 (H, W, 3) -> z_goal (1, N, D)."""
        return self.world_model.encode(_frames(goal_pixels, self.device))

    def cost_fn(self, obs: dict, goal: torch.Tensor, horizon: int) -> CostFn:
        return self.batch_cost_fn([obs], [goal], horizon)

    def batch_cost_fn(self, obs: Sequence[dict], goals: Sequence[torch.Tensor], horizon: int) -> CostFn:
        """Encode the E current frames once; the returned cost shares their (cached) context."""
        with torch.no_grad():
            frames = np.stack([observed_frames(o, self.views) for o in obs])  # (E, V*S, S, 3)
            frames = _frames(frames, self.device)
            z = self.world_model.encode(frames)  # (E, N, D)
        states = torch.as_tensor(np.stack([o["state"] for o in obs]).astype(np.float32), device=self.device)
        weights = {} if self.view_weights is None else {"view_weights": self.view_weights}
        return self.world_model.planning_cost(z[:, None], states[:, None], torch.cat(list(goals)), horizon,
                                              metric=self.metric, **weights)  # over (E*S, H, 7)


def _frames(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) -> uint8 tensor (B, H, W, 3) on device."""
    frames = torch.as_tensor(np.ascontiguousarray(pixels), device=device)
    return frames[None] if frames.dim() == 3 else frames


class GoalSchedule:
    """Goal images in order, each held for a step budget; the last keeps the rest of the episode.

    The paper's pick-and-place used three: grasped (4 steps), near the target (10), final
    (the rest). A goal may also be left early: when the planned energy falls to
    `switch_below`, or when it has not improved by `plateau_tol` (relative) for
    `plateau_steps` steps. A goal may come as a latent made by the agent (`latents`, the image
    then only shows it); a hierarchical agent can also subclass this (override `pixels` and `step`).
    """

    def __init__(
        self,
        goals: Sequence[np.ndarray],
        budgets: Sequence[int] = (),
        *,
        switch_below: float | None = None,
        plateau_steps: int | None = None,
        plateau_tol: float = 0.01,
        latents: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        if len(goals) == 0:
            raise ValueError("a GoalSchedule needs at least one goal image")
        if len(budgets) not in (len(goals) - 1, len(goals)):
            raise ValueError(f"give a step budget for each goal but the last ({len(goals) - 1}), "
                             f"or for every goal; got {len(budgets)} for {len(goals)} goals")
        if any(b < 1 for b in budgets):
            raise ValueError(f"step budgets must be >= 1, got {list(budgets)}")
        if plateau_steps is not None and plateau_steps < 1:
            raise ValueError(f"plateau_steps must be >= 1, got {plateau_steps}")
        if latents is not None and len(latents) != len(goals):
            raise ValueError(f"give a latent (or None) for each of the {len(goals)} goals, "
                             f"got {len(latents)}")
        self.goals = [np.asarray(g) for g in goals]
        self.latents = list(latents) if latents is not None else [None] * len(goals)
        self.budgets = list(budgets)[: len(goals) - 1]  # the last goal keeps the rest
        self.switch_below = switch_below
        self.plateau_steps = plateau_steps
        self.plateau_tol = plateau_tol
        self.reset()

    @classmethod
    def paper_pick_place(cls, grasped: np.ndarray, near_target: np.ndarray, final: np.ndarray,
                         **switching) -> GoalSchedule:
        """V-JEPA 2-AC's pick-and-place sub-goals: 4 steps, 10 steps, then the rest."""
        return cls([grasped, near_target, final], budgets=(4, 10), **switching)

    def reset(self) -> None:
        self.index = 0  # the current goal
        self._steps = 0  # steps spent on it
        self._best = float("inf")  # its lowest energy so far
        self._since_best = 0  # steps since that energy improved

    @property
    def pixels(self) -> np.ndarray:
        """The current goal image, uint8 (H, W, 3)."""
        return self.goals[self.index]

    @property
    def latent(self) -> torch.Tensor | None:
        """The current goal's latent (1, N, D) when it was made in latent space (then `pixels` only
        illustrates it); None: the agent encodes `pixels`."""
        return self.latents[self.index]

    def step(self, energy: float) -> bool:
        """Account for one executed action whose plan reached `energy`; True if the goal changed."""
        self._steps += 1
        if self._best == float("inf") or energy < self._best - self.plateau_tol * abs(self._best):
            self._best, self._since_best = energy, 0
        else:
            self._since_best += 1
        if self.index >= len(self.budgets):
            return False  # the last goal: stay
        done = self._steps >= self.budgets[self.index]
        done |= self.switch_below is not None and energy <= self.switch_below
        done |= self.plateau_steps is not None and self._since_best >= self.plateau_steps
        if done:
            self.index += 1
            self._steps, self._best, self._since_best = 0, float("inf"), 0
        return done


def as_schedule(goal: np.ndarray | Sequence[np.ndarray] | GoalSchedule) -> GoalSchedule:
    """One goal image (H, W, 3), a list of one, or a schedule; several images need a schedule's budgets."""
    if isinstance(goal, GoalSchedule):
        return goal
    if isinstance(goal, np.ndarray) and goal.ndim == 3:
        return GoalSchedule([goal])
    if len(goal) == 1:
        return GoalSchedule(list(goal))
    raise ValueError("several goal images need step budgets: pass a GoalSchedule")


class MPCAgent:
    """Receding-horizon planning toward goal images: `reset(goal)`, then `act(obs) -> action float32
    (7,)`; or E episodes in one batch: `reset_batch(goals)`, then `act_batch(obs) -> (E, 7)`.

    obs is a dict with `pixels` uint8 (H, W, 3) and `state` float32 (7,), as our envs give. Each
    goal image is encoded once per episode. For one episode, `plan`, `energies`, `goal_indices` and
    `planning_seconds` hold its record (a batch's: `loop.energies[e]`, `indices[e]`).
    """

    def __init__(
        self,
        model: CostModel,
        planner: PlannerConfig | None = None,
        *,
        warm_start: str = "zero",
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        self.model = model
        self.seed = seed
        device = device if device is not None else getattr(model, "device", None)
        self.loop = RecedingHorizon(planner, warm_start=warm_start, device=device)
        self.schedules: list[GoalSchedule] = []

    @property
    def planner(self) -> PlannerConfig:
        return self.loop.planner

    @property
    def horizon(self) -> int:
        return self.loop.horizon

    def reset(self, goal: np.ndarray | Sequence[np.ndarray] | GoalSchedule, seed: int | None = None) -> None:
        """Start an episode towards one goal image (H, W, 3), a list of one, or a schedule."""
        self.reset_batch([as_schedule(goal)], [self.seed if seed is None else seed])

    def reset_batch(self, goals: Sequence[np.ndarray | GoalSchedule],
                    seeds: Sequence[int] | None = None) -> None:
        """Start E episodes, each toward its goal image or schedule; seeds default to seed + e."""
        self.schedules = [as_schedule(g) for g in goals]
        for schedule in self.schedules:
            schedule.reset()
        self._encoded: list[dict[int, Any]] = [{} for _ in goals]  # goal index -> encoding
        self.indices: list[list[int]] = [[] for _ in goals]  # the goal each step planned toward
        self.loop.reset(list(seeds) if seeds is not None else [self.seed + e for e in range(len(goals))])

    def act_batch(self, obs: Sequence[dict]) -> np.ndarray:
        """Plan from each episode's observation toward its current goal; first actions (E, 7)."""
        if not self.schedules:
            raise RuntimeError("call reset(goal) before act(obs)")
        started = time.perf_counter()
        goals = []
        for encoded, schedule in zip(self._encoded, self.schedules, strict=True):
            if schedule.index not in encoded:
                made = schedule.latent
                encoded[schedule.index] = self.model.encode_goal(schedule.pixels) if made is None else made
            goals.append(encoded[schedule.index])
        actions = self.loop.act(batch_cost_fn(self.model, obs, goals, self.horizon), started=started)
        for e, schedule in enumerate(self.schedules):
            self.indices[e].append(schedule.index)
            if schedule.step(self.loop.energies[e][-1]):
                self.loop.forget(e)  # a new goal: the old plan is no warm start for it
        return actions

    def act(self, obs: dict) -> np.ndarray:
        """Plan from `obs` and return the first action, float32 (7,)."""
        return self.act_batch([obs])[0]

    def __call__(self, obs: dict) -> np.ndarray:
        return self.act(obs)

    # -- one episode's record ------------------------------------------------------------------------
    @property
    def plan(self) -> torch.Tensor | None:
        """The last plan (H, 7)."""
        return self.loop.plans[0]

    @property
    def energies(self) -> list[float]:
        return self.loop.energies[0]

    @property
    def goal_indices(self) -> list[int]:
        return self.indices[0]

    @property
    def planning_seconds(self) -> list[float]:
        return self.loop.planning_seconds
