"""The simulator as a perfect world model: with a state-space cost, or with the latent energy.

The same `CostModel` interface as the latent world model, so `MPCAgent` runs unchanged: each
candidate action sequence is played for real in the env's MuJoCo simulation from a snapshot
of the current state (a Python loop over candidates: the simulator is not batched), and the
cost is the distance of the resulting privileged task state to the goal's. CEM on it is the
benchmark's "perfect model" row: it bounds what the planner alone can do (DESIGN.md).

The goal image cannot be read by the simulator, so the goal states are given alongside it:
`set_goals` pairs each goal image with its privileged task state (from the reset info), and
`encode_goal` looks the state up by image.

`SimFramesCostModel` plays the candidates in the simulator the same way but renders the frames
they end in and scores them with a world model's latent energy to the goal images: the latent
planner with a perfect predictor. Its gap to the state-cost row is the energy's and the goal
images' (what the frames and the sub-goals show); its gap to the latent planner is the predictor's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ami_robot.agent import observed_frames
from ami_robot.envs import VIEWS, view_key
from ami_robot.planners import CostFn


@dataclass(frozen=True)
class StateCost:
    """Weights of the state cost: distances (m) of the TCP and the object to their goal
    positions, the gripper's difference (closedness in [0, 1]), and a pusher term: the TCP's
    distance to the point `push_offset` behind the object as seen from its goal (the usual
    shaping for pushing: it pays to get behind the object before the object term can move)."""

    tcp: float = 1.0
    object: float = 1.0
    gripper: float = 0.0
    pusher: float = 0.0
    push_offset: float = 0.05  # m, from the object's centre, away from its goal

    def __post_init__(self) -> None:
        weights = (self.tcp, self.object, self.gripper, self.pusher)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"state cost weights must be >= 0 and not all 0, got {self}")
        if self.push_offset < 0:
            raise ValueError(f"push_offset must be >= 0, got {self.push_offset}")

    def __call__(self, task_state: np.ndarray, goal: np.ndarray) -> float:
        """task_state, goal: float[7] = TCP xyz, gripper, object xyz."""
        tcp, obj = task_state[:3], task_state[4:7]
        cost = self.tcp * np.linalg.norm(tcp - goal[:3]) + self.object * np.linalg.norm(obj - goal[4:7])
        cost += self.gripper * abs(task_state[3] - goal[3])
        if self.pusher:
            away = obj[:2] - goal[4:6]
            away = away / max(float(np.linalg.norm(away)), 1e-9)
            behind = np.array([*(obj[:2] + self.push_offset * away), obj[2]])
            cost += self.pusher * np.linalg.norm(tcp - behind)
        return float(cost)


class SimCostModel:
    """A CostModel that simulates every candidate in `env` and restores its state afterwards.

    env: our base env (`env.unwrapped`), offering get_sim_state, set_sim_state,
    simulate(action) and task_state().
    """

    def __init__(self, env: Any, cost: StateCost | None = None) -> None:
        self.env = env
        self.cost = cost or StateCost()
        self._goals: list[tuple[np.ndarray, np.ndarray]] = []
        self.simulated_steps = 0  # control steps simulated for planning, for the benchmark

    def set_goals(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """(goal image uint8 (H, W, 3), goal task state float[7]) for each goal of the episode."""
        self._goals = [(np.asarray(p), np.asarray(s, dtype=np.float64)) for p, s in pairs]

    def set_goals_from_info(self, info: dict) -> None:
        """Take the goal image and its task state from our envs' reset info."""
        self.set_goals([(info["goal_pixels"], info["goal_task_state"])])

    def encode_goal(self, goal_pixels: np.ndarray) -> np.ndarray:
        """The goal task state paired with this image by set_goals."""
        for pixels, state in self._goals:
            if pixels.shape == goal_pixels.shape and np.array_equal(pixels, goal_pixels):
                return state
        raise KeyError("goal image unknown to the simulator: call set_goals with the episode's goal "
                       "images and their task states first")

    def cost_fn(self, obs: dict, goal: np.ndarray, horizon: int) -> CostFn:
        """Cost of (B, horizon, 7) from the env's current state (obs is not needed: the state is)."""
        env = self.env
        snapshot = env.get_sim_state()

        def cost(actions: torch.Tensor) -> torch.Tensor:
            plans = actions.detach().cpu().double().numpy()  # (B, H, 7)
            out = np.empty(len(plans))
            try:
                for b, plan in enumerate(plans):
                    env.set_sim_state(snapshot)
                    for action in plan:
                        env.simulate(action)
                    out[b] = self.cost(env.task_state(), goal)
                self.simulated_steps += plans.shape[0] * plans.shape[1]
            finally:
                env.set_sim_state(snapshot)  # the real episode continues from where it was
            return torch.as_tensor(out, dtype=actions.dtype, device=actions.device)

        return cost


class SimFramesCostModel:
    """A CostModel that simulates every candidate in `env`, renders the camera views the world
    model reads at the end of it, and scores those real frames by the latent energy to the goal.

    env: our base env (`env.unwrapped`), with `render_frame(view)`; world_model: a WorldModel
    (only its encoder is used).
    """

    def __init__(self, env: Any, world_model: Any, metric: str = "l1",
                 view_weights: Sequence[float] | None = None) -> None:
        self.env = env
        self.world_model = world_model
        self.metric = metric
        self.view_weights = None if view_weights is None else tuple(view_weights)
        self.views = VIEWS[: world_model.views]
        self.simulated_steps = 0

    @torch.no_grad()
    def encode_goal(self, goal_pixels: np.ndarray) -> torch.Tensor:
        """goal_pixels uint8 (V*S, S, 3), views stacked -> z_goal (1, N, D)."""
        return self.world_model.encode(np.asarray(goal_pixels)[None])

    def cost_fn(self, obs: dict, goal: torch.Tensor, horizon: int) -> CostFn:
        env = self.env
        snapshot = env.get_sim_state()

        @torch.no_grad()
        def cost(actions: torch.Tensor) -> torch.Tensor:
            plans = actions.detach().cpu().double().numpy()  # (B, H, 7)
            frames = []
            try:
                for plan in plans:
                    env.set_sim_state(snapshot)
                    for action in plan:
                        env.simulate(action)
                    shown = {view_key(view): env.render_frame(view) for view in self.views}
                    frames.append(observed_frames(shown, self.views))
                self.simulated_steps += plans.shape[0] * plans.shape[1]
            finally:
                env.set_sim_state(snapshot)
            z = self.world_model.encode(np.stack(frames))  # (B, N, D)
            energy = self.world_model.energy(z, goal.to(z.device), self.metric, self.view_weights)  # (B,)
            return energy.to(actions.device, actions.dtype)

        return cost
