"""MPCAgent: a Gymnasium policy made of a cost model, a planner and a goal schedule.

Receding horizon, as V-JEPA 2-AC plans: at every step encode what is seen, plan H actions
against the current goal, execute the first, re-plan from the next observation with the
previous plan shifted by one step as the warm start.

The agent talks to a `CostModel`, so the latent world model (`LatentCostModel`) and the
simulator (`ami_robot.sim_model.SimCostModel`) are interchangeable. Goals come from a
`GoalSchedule`: one goal image, or sub-goal images with step budgets and optional early
switching; a hierarchical agent that makes its own sub-goals can subclass it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ami_robot.planners import CEMConfig, CostFn, PlannerConfig, plan, shift_plan


class CostModel(Protocol):
    """What the agent needs of a model: a goal encoding and a cost over action sequences."""

    def encode_goal(self, goal_pixels: np.ndarray) -> Any:
        """goal_pixels uint8 (H, W, 3) -> whatever cost_fn compares against."""
        ...

    def cost_fn(self, obs: dict, goal: Any, horizon: int) -> CostFn:
        """The cost of action sequences (B, horizon, 7) -> (B,) from observation `obs` to `goal`."""
        ...


class LatentCostModel:
    """The V-JEPA 2-AC energy: L1 between the predicted latent of the last planned step and the
    goal image's latent, predicted by a `WorldModel` from the current frame and state.

    Context is the current frame only (C = 1, as the paper plans).
    """

    def __init__(self, world_model: Any) -> None:
        self.world_model = world_model

    @property
    def device(self) -> torch.device:
        return next(self.world_model.parameters()).device

    @torch.no_grad()
    def encode_goal(self, goal_pixels: np.ndarray) -> torch.Tensor:
        """goal_pixels uint8 (H, W, 3) -> z_goal (1, N, D)."""
        return self.world_model.encode(_frames(goal_pixels, self.device))

    def cost_fn(self, obs: dict, goal: torch.Tensor, horizon: int) -> CostFn:
        """Encode the current frame once; the returned cost shares its (cached) context."""
        with torch.no_grad():
            z = self.world_model.encode(_frames(obs["pixels"], self.device))  # (1, N, D)
        state = torch.as_tensor(np.asarray(obs["state"], dtype=np.float32), device=self.device)
        return self.world_model.planning_cost(z[:, None], state[None, None], goal, horizon)


def _frames(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) -> uint8 tensor (B, H, W, 3) on device."""
    frames = torch.as_tensor(np.ascontiguousarray(pixels), device=device)
    return frames[None] if frames.dim() == 3 else frames


class GoalSchedule:
    """Goal images in order, each held for a step budget; the last keeps the rest of the episode.

    The paper's pick-and-place used three: grasped (4 steps), near the target (10), final
    (the rest). A goal may also be left early: when the planned energy falls to
    `switch_below`, or when it has not improved by `plateau_tol` (relative) for
    `plateau_steps` steps. A hierarchical agent can subclass this and make its own goals
    (override `pixels` and `step`).
    """

    def __init__(
        self,
        goals: Sequence[np.ndarray],
        budgets: Sequence[int] = (),
        *,
        switch_below: float | None = None,
        plateau_steps: int | None = None,
        plateau_tol: float = 0.01,
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
        self.goals = [np.asarray(g) for g in goals]
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


class MPCAgent:
    """Receding-horizon planning as a policy: `reset(goal)`, then `act(obs) -> action float32 (7,)`.

    obs is a dict with `pixels` uint8 (H, W, 3) and `state` float32 (7,), as our envs give.
    After every step, `planning_seconds`, `energies` and `goal_indices` hold one entry more.
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
        if warm_start not in ("zero", "repeat", "none"):
            raise ValueError(f"warm_start must be 'zero', 'repeat' or 'none', got {warm_start!r}")
        self.model = model
        self.planner = planner if planner is not None else CEMConfig.cpu_default()
        self.warm_start = warm_start  # how the previous plan seeds the next: shift_plan's fill
        self.seed = seed
        self.device = torch.device(device) if device is not None else getattr(model, "device", None)
        self.schedule: GoalSchedule | None = None

    @property
    def horizon(self) -> int:
        return self.planner.horizon

    def reset(self, goal: np.ndarray | Sequence[np.ndarray] | GoalSchedule, seed: int | None = None) -> None:
        """Start an episode towards one goal image (H, W, 3), a list of them, or a schedule.

        A plain list of several images needs a GoalSchedule for its step budgets.
        """
        if isinstance(goal, GoalSchedule):
            self.schedule = goal
        elif isinstance(goal, np.ndarray) and goal.ndim == 3:
            self.schedule = GoalSchedule([goal])
        elif len(goal) == 1:
            self.schedule = GoalSchedule(list(goal))
        else:
            raise ValueError("several goal images need step budgets: pass a GoalSchedule")
        self.schedule.reset()
        self._encoded: dict[int, Any] = {}  # goal index -> encoding, made once per episode
        self.generator = torch.Generator(self.device or "cpu").manual_seed(
            self.seed if seed is None else seed)
        self.plan: torch.Tensor | None = None  # the last plan (H, 7)
        self.planning_seconds: list[float] = []
        self.energies: list[float] = []
        self.goal_indices: list[int] = []

    def act(self, obs: dict) -> np.ndarray:
        """Plan from `obs` and return the first action, float32 (7,)."""
        if self.schedule is None:
            raise RuntimeError("call reset(goal) before act(obs)")
        index = self.schedule.index
        if index not in self._encoded:
            self._encoded[index] = self.model.encode_goal(self.schedule.pixels)
        start = time.perf_counter()
        cost_fn = self.model.cost_fn(obs, self._encoded[index], self.horizon)
        init = None
        if self.plan is not None and self.warm_start != "none":
            init = shift_plan(self.plan, fill=self.warm_start)
        self.plan = plan(cost_fn, self.planner, init_mean=init, generator=self.generator,
                         device=self.device)  # (H, 7)
        self.planning_seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            energy = float(cost_fn(self.plan[None]).item())  # the energy the plan reaches
        self.energies.append(energy)
        self.goal_indices.append(index)
        action = self.plan[0].detach().cpu().numpy().astype(np.float32)  # (7,)
        if self.schedule.step(energy):
            self.plan = None  # a new goal: the old plan is no warm start for it
        return action

    def __call__(self, obs: dict) -> np.ndarray:
        return self.act(obs)
