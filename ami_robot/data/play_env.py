"""PlayEnv: the environment a collection worker runs, with the data policy inside it.

A vector env steps its sub-environments in worker processes; putting the policy inside the
sub-environment keeps all per-step work (physics, rendering, the scripted expert) in the
workers and only ships frames, states and the commanded actions back. PlayEnv is self-driving:
its action space is Discrete(1) ("advance one step"); what it actually sent to the task env is
`info["action"]`.

reset(options={"plans": {index: plan}}) starts the planned episode of this worker (`index` is
its position in the vector env; a plan is a dict with id, task, seed, policy, steps, rng).
Observations are only the robot's: {"pixels", "state"} (the goal image is not needed here), where
pixels stacks the env's camera views top to bottom ((V*S, S, 3), `envs.stack_views`); info
also carries the privileged object position, stored as a per-frame extra for diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ami_robot.data.policies import PlayConfig, Policy, make_policy
from ami_robot.envs import ENV_CLASSES, stack_views


class PlayEnv(gym.Env):
    """One worker's task environments (made on first use) and the policy of the current episode."""

    def __init__(self, index: int, env_kwargs: Mapping[str, Any], play: PlayConfig) -> None:
        self.index = index
        self.env_kwargs = dict(env_kwargs)
        self.play = play
        size = int(self.env_kwargs.get("image_size", 128))
        self.views = tuple(self.env_kwargs.get("views", ("exterior",)))
        height = size * len(self.views)
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (height, size, 3), np.uint8),
            "state": spaces.Box(-np.inf, np.inf, (7,), np.float32),
        })
        self.action_space = spaces.Discrete(1)
        self._envs: dict[str, gym.Env] = {}
        self._env: gym.Env | None = None
        self._policy: Policy | None = None
        self._obs = {"pixels": np.zeros((height, size, 3), np.uint8), "state": np.zeros(7, np.float32)}
        self._info: dict[str, Any] = {}
        self._left = 0  # steps left in the current episode

    def _task_env(self, task: str) -> gym.Env:
        if task not in self._envs:
            # The bare class: the episode length is the plan's (no TimeLimit), the checker ran in tests/envs.
            self._envs[task] = ENV_CLASSES[task](**self.env_kwargs)
        return self._envs[task]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        plans = (options or {}).get("plans", {})
        if self.index not in plans:
            raise ValueError(f"PlayEnv {self.index}: reset needs options['plans'][{self.index}]")
        plan = plans[self.index]
        self._left = 0
        try:
            self._env = self._task_env(plan["task"])
            obs, info = self._env.reset(seed=int(plan["seed"]))
            rng = np.random.default_rng(plan["rng"])
            self._policy = make_policy(plan["policy"], self._env, rng, self.play, int(plan["steps"]))
        except Exception as exc:  # one broken episode must not stop the collection: report it instead
            return dict(self._obs), self._reset_info(plan, {}, error=f"reset: {type(exc).__name__}: {exc}")
        self._obs = {"pixels": stack_views(obs, self.views), "state": obs["state"]}
        self._info = info
        self._left = int(plan["steps"])
        return dict(self._obs), self._reset_info(plan, info, error="")

    @staticmethod
    def _reset_info(plan: dict[str, Any], info: dict[str, Any], error: str) -> dict[str, Any]:
        return {
            "episode": int(plan["id"]),
            "object_kind": str(info.get("object_kind", "")),
            "object_size": float(info.get("object_size", 0.0)),
            "object_color": np.asarray(info.get("object_color", np.zeros(3)), np.float32),
            "goal_realised": bool(info.get("goal_realised", False)),
            "object_pos": np.asarray(info.get("object_pos", np.zeros(3)), np.float32),
            "error": error,  # "" when the episode started
        }

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        error = ""
        if self._left > 0 and self._env is not None and self._policy is not None:
            try:
                commanded = self._policy.act(self._obs, self._info)
                obs, _, terminated, truncated, info = self._env.step(commanded)
            except Exception as exc:  # reported to the collector, which drops this episode
                error = f"step: {type(exc).__name__}: {exc}"
                self._left = 0
            else:
                self._obs = {"pixels": stack_views(obs, self.views), "state": obs["state"]}
                self._info = info
                self._left = 0 if terminated or truncated else self._left - 1
                return dict(self._obs), 0.0, bool(terminated), False, {
                    "action": np.asarray(commanded, np.float32),
                    "active": True,
                    "success": bool(info.get("success", False)),
                    "object_pos": np.asarray(info["object_pos"], np.float32),
                    "error": "",
                }
        # idle (the episode is over, none was given, or it just failed): nothing moves
        return dict(self._obs), 0.0, False, False, {
            "action": np.zeros(7, np.float32),
            "active": False,
            "success": False,
            "object_pos": np.asarray(self._info.get("object_pos", np.zeros(3)), np.float32),
            "error": error,
        }

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
