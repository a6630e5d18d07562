"""The reward-free data policies: scripted play with noise, and smooth random exploration.

Each policy acts on one ami_robot environment for one episode, from a generator seeded by the
episode, so an episode's actions depend on its id only. Kinds:

- "expert_clean": the task's scripted expert (envs/experts.py) as it is.
- "expert_noisy": the expert with Gaussian action noise, random 1-3 step "misses", and, in some
  episodes, an early gripper opening for a few steps (drops, failed grasps, regrasps).
- "expert_then_random": the expert until a random step, then the random walk (play after a lift).
- "random": a smooth random walk between random waypoints (half of them near the object),
  random wrist turns and occasional gripper toggles: pushes, nudges and misses.

The policies read privileged state (the expert's plan, the object position); they only produce
the actions: the recorded data is still frames, robot states and actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

from ami_robot.envs import ACTION_HIGH, ScriptedExpert
from ami_robot.envs.sim import DOWN
from ami_robot.envs.specs import WORKSPACE_HIGH, WORKSPACE_LOW

POLICY_KINDS = ("expert_clean", "expert_noisy", "expert_then_random", "random")
_HIGH = np.array(ACTION_HIGH)


@dataclass(frozen=True)
class PlayConfig:
    """Knobs of the data policies (units per control step of 0.25 s)."""

    noise_std: float = 0.05  # expert_noisy: Gaussian noise, as a fraction of each action bound
    miss_prob: float = 0.03  # expert_noisy: per-step chance of 1-3 random actions
    release_prob: float = 0.3  # expert_noisy: per-episode chance of opening the gripper early
    release_steps: tuple[int, int] = (2, 6)  # expert_noisy: how long it stays open (min, max steps)
    switch_range: tuple[float, float] = (0.3, 0.8)  # expert_then_random: switch step, fraction of the episode
    walk_speed: float = 0.04  # random: typical TCP step (m)
    walk_smoothing: float = 0.6  # random: AR(1) coefficient of consecutive actions (0 = white noise)
    walk_rot_std: float = 0.05  # random: wrist noise (rad)
    waypoint_steps: tuple[int, int] = (5, 14)  # random: steps between new waypoints (min, max)
    object_bias: float = 0.5  # random: fraction of waypoints drawn near the object
    toggle_prob: float = 0.08  # random: per-step chance of toggling the gripper command

    def __post_init__(self) -> None:
        for name in ("noise_std", "walk_speed", "walk_rot_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("miss_prob", "release_prob", "object_bias", "toggle_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.walk_smoothing < 1:
            raise ValueError(f"walk_smoothing must be in [0, 1), got {self.walk_smoothing}")
        lo, hi = self.switch_range
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"switch_range must be 0 <= lo <= hi <= 1, got {self.switch_range}")
        for name in ("release_steps", "waypoint_steps"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"{name} must be 1 <= min <= max, got {(lo, hi)}")


class Policy(Protocol):
    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The next action, float32[7] within the action bounds."""
        ...


class RandomWalk:
    """Smooth random exploration: AR(1) actions pulled towards random waypoints."""

    def __init__(self, rng: np.random.Generator, cfg: PlayConfig) -> None:
        self.rng, self.cfg = rng, cfg
        self._prev = np.zeros(7)
        self._waypoint = np.zeros(3)
        self._yaw = 0.0
        self._left = 0  # steps until the next waypoint
        self._grip_cmd = 0.0  # our own record of the env's gripper command (starts open)

    def _new_waypoint(self, info: dict[str, Any]) -> None:
        lo, hi = np.array(WORKSPACE_LOW), np.array(WORKSPACE_HIGH)
        if "object_pos" in info and self.rng.random() < self.cfg.object_bias:
            xy = np.asarray(info["object_pos"])[:2] + self.rng.normal(0.0, 0.03, 2)
            z = self.rng.uniform(lo[2], 0.12)
            self._waypoint = np.clip([*xy, z], lo, hi)
        else:
            self._waypoint = self.rng.uniform(lo, hi)
        self._yaw = self.rng.uniform(-np.pi / 4, np.pi / 4)
        self._left = int(self.rng.integers(self.cfg.waypoint_steps[0], self.cfg.waypoint_steps[1] + 1))

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        if self._left <= 0:
            self._new_waypoint(info)
        self._left -= 1
        state = np.asarray(obs["state"], np.float64)
        wanted = np.zeros(7)
        wanted[:3] = np.clip(0.5 * (self._waypoint - state[:3]), -cfg.walk_speed, cfg.walk_speed)
        turn = Rotation.from_euler("z", self._yaw) * DOWN * Rotation.from_euler("xyz", state[3:6]).inv()
        wanted[3:6] = Rotation.from_rotvec(0.3 * turn.as_rotvec()).as_euler("xyz")
        noise = np.r_[rng.normal(0.0, 0.5 * cfg.walk_speed, 3), rng.normal(0.0, cfg.walk_rot_std, 3), 0.0]
        action = cfg.walk_smoothing * self._prev + (1 - cfg.walk_smoothing) * wanted + noise
        action[6] = 0.0
        if rng.random() < cfg.toggle_prob:
            action[6] = (1.0 - self._grip_cmd) - self._grip_cmd  # +1 closes an open gripper, -1 opens
        action = np.clip(action, -_HIGH, _HIGH)
        self._grip_cmd = float(np.clip(self._grip_cmd + action[6], 0.0, 1.0))
        self._prev = action
        return action.astype(np.float32)

    def sync_gripper(self, command: float) -> None:
        """Take over from another policy that left the gripper command at `command`."""
        self._grip_cmd = command


class ExpertPlay:
    """The scripted expert, optionally noisy, with an early gripper opening, or handing over to a walk."""

    def __init__(
        self,
        env: gym.Env,
        rng: np.random.Generator,
        cfg: PlayConfig,
        steps: int,
        noisy: bool,
        switch_to_random: bool,
    ) -> None:
        self.rng, self.cfg = rng, cfg
        seed = int(rng.integers(2**63))
        noise, miss = (cfg.noise_std, cfg.miss_prob) if noisy else (0.0, 0.0)
        self.expert = ScriptedExpert(env, noise_std=noise, miss_prob=miss, seed=seed)
        self.expert.reset()
        self._t = 0
        self._grip_cmd = 0.0
        self._release_at, self._release_left = -1, 0
        if noisy and rng.random() < cfg.release_prob:
            self._release_at = int(rng.integers(max(1, steps // 4), max(2, steps)))
            self._release_len = int(rng.integers(cfg.release_steps[0], cfg.release_steps[1] + 1))
        self._switch_at = steps + 1
        if switch_to_random:
            lo, hi = cfg.switch_range
            first = round(lo * steps)
            self._switch_at = int(rng.integers(first, max(round(hi * steps), first + 1)))
        self._walk = RandomWalk(rng, cfg)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        t, self._t = self._t, self._t + 1
        if t >= self._switch_at:
            if t == self._switch_at:
                self._walk.sync_gripper(self._grip_cmd)
            return self._walk.act(obs, info)
        action = self.expert.act(obs).astype(np.float64)
        if t == self._release_at:
            self._release_left = self._release_len
        if self._release_left > 0:  # keep the gripper command open whatever the script asks
            self._release_left -= 1
            action[6] = -self._grip_cmd
        action = np.clip(action, -_HIGH, _HIGH)
        self._grip_cmd = float(np.clip(self._grip_cmd + action[6], 0.0, 1.0))
        return action.astype(np.float32)


def make_policy(kind: str, env: gym.Env, rng: np.random.Generator, cfg: PlayConfig, steps: int) -> Policy:
    """The policy of `kind` for one episode of `steps` actions on `env` (just reset)."""
    if kind == "random":
        return RandomWalk(rng, cfg)
    if kind in ("expert_clean", "expert_noisy", "expert_then_random"):
        return ExpertPlay(
            env, rng, cfg, steps, noisy=kind != "expert_clean", switch_to_random=kind == "expert_then_random"
        )
    raise ValueError(f"unknown policy kind {kind!r}; choose from {POLICY_KINDS}")
