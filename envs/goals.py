"""`GoalObservation`: the tasks under Gymnasium-Robotics' goal conventions, for state-based RL (HER).

The wrapped env is unchanged (its pixels, reward, info and time limit); the wrapper replaces what
the agent sees and is rewarded with, as Gymnasium-Robotics' `GoalEnv` does (gymnasium + numpy only):

    import ami_robot.envs
    env = ami_robot.envs.make_goal_env("Reach")  # GoalObservation(gym.make("ami_robot/Reach-v0", ...))
    obs, info = env.reset(seed=0)  # obs: observation, achieved_goal, desired_goal
    reward = env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)  # -1.0 or 0.0

## Goals (base frame, m)

| Task      | achieved_goal                     | desired_goal                                     |
|-----------|-----------------------------------|--------------------------------------------------|
| Reach     | TCP position                      | the TCP position the expert reached at reset     |
| Grasp     | object centre                     | the object centre lifted 6-10 cm (as realised)   |
| Push      | object centre                     | the object centre at its goal on the table       |
| PickPlace | object centre                     | the object centre at its goal on the table       |

The desired goal is the env's realised goal (`env.goal.position`), the same point `info["distance"]`
measures to.

## Action Space
By default (`rotation=False`) Gymnasium-Robotics' Fetch convention: `Box(-high, high, (4,), float32)`,
the TCP target's x, y, z change (bound 0.1 m) and the gripper command change (bound 1), passed to
the env as its 7-D action with no rotation (`arm_action`), so the hand keeps the orientation reset
gave it (pointing down). `rotation=True` keeps the env's own 7-D action. Why the default: SAC + HER
on Reach with the 7-D action had no training success in 10k steps, where the 4-D one succeeded in
every training episode from 18k steps on (docs/rl.md): random rotations twist the wrist so that the
TCP trails its target (median 7 cm under uniform random actions, up to 24 cm), a lag the
observation does not show.

## Observation Space
`Dict(observation, achieved_goal, desired_goal)`, all float32:
- `observation`: the robot state (7: TCP xyz, TCP extrinsic xyz Euler, gripper closure, as the
  env's `state`); Grasp, Push and PickPlace append the object's state (16: centre xyz, centre minus
  TCP, orientation quaternion w x y z, linear and angular velocity), 23 in all. Reach has no object
  to move, so its observation is the robot state alone.
- `achieved_goal`, `desired_goal`: float32[3], as in the table.

## Rewards
Sparse, Gymnasium-Robotics' way: `compute_reward(achieved_goal, desired_goal, info)` is -1 while
the goal distance is at least the task's threshold (`TASK_SPECS[task].threshold`: 4 cm; Grasp 5 cm)
and 0 below it, for any leading batch shape (HER relabels whole batches; `info` is not read).
`info["is_success"]` is 1.0 when the reward is 0.

That is the goal criterion, not always the task's: Grasp also asks the object to be held between
the fingers and PickPlace that it be released and resting. `info["success"]` is still the env's
own verdict, the one the evaluation protocol reads.

## Episode End
`compute_terminated` and `compute_truncated` return False, as in Gymnasium-Robotics: the tasks go
on until the wrapped env's TimeLimit truncates them at the task's budget.

## Speed
The wrapped env still renders its frames every step (it has no switch to stop that; the wrapper
drops them): `make_goal_env` makes it at 16 px, the smallest size, where a frame costs ~3 ms.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ami_robot.envs.arm import STATE_HIGH, STATE_LOW
from ami_robot.envs.specs import ACTION_HIGH, TASK_SPECS

# What each task's achieved goal reads: the TCP or the object's centre.
ACHIEVED = {"Reach": "tcp", "Grasp": "object", "Push": "object", "PickPlace": "object"}
POSITION_ACTION_HIGH = (ACTION_HIGH[0], ACTION_HIGH[1], ACTION_HIGH[2], ACTION_HIGH[6])  # m, m, m, 1
# Bounds of the observation's parts: the robot state's are the env's `state` Box; a position is
# within 2 m of the arm's base (the object may fall off the table, below z = 0); velocities are
# bounded far above what the scene reaches (a 1 m fall ends at 4.4 m/s): a finite Box.
REACH = 2.0  # m
SPEED_BOUND = 100.0  # m/s and rad/s
OBJECT_HIGH = (REACH,) * 3 + (2 * REACH,) * 3 + (1.0,) * 4 + (SPEED_BOUND,) * 6


def goal_observation_space(task: str) -> spaces.Dict:
    """The `Dict(observation, achieved_goal, desired_goal)` space of `task`."""
    if task not in ACHIEVED:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(ACHIEVED)}")
    low, high = list(STATE_LOW), list(STATE_HIGH)  # robot: TCP xyz, Euler xyz, gripper
    if ACHIEVED[task] == "object":  # centre, centre - TCP, quaternion, linear and angular velocity
        low += [-h for h in OBJECT_HIGH]
        high += list(OBJECT_HIGH)
    goal = spaces.Box(-REACH, REACH, (3,), np.float32)
    return spaces.Dict({"observation": spaces.Box(np.array(low, np.float32), np.array(high, np.float32)),
                        "achieved_goal": goal, "desired_goal": goal})


def position_action_space() -> spaces.Box:
    """The 4-D action of `rotation=False`: TCP target x, y, z change (m) and gripper command change."""
    high = np.array(POSITION_ACTION_HIGH, np.float32)
    return spaces.Box(-high, high)


def arm_action(action: np.ndarray) -> np.ndarray:
    """The env's 7-D action for a 4-D one (dx, dy, dz, gripper): no rotation."""
    action = np.asarray(action)
    if action.shape != (4,):
        raise ValueError(f"a position action has shape (4,): dx, dy, dz, gripper; got {action.shape}")
    full = np.zeros(7, action.dtype if np.issubdtype(action.dtype, np.floating) else np.float32)
    full[:3], full[6] = action[:3], action[3]
    return full


def goal_observation(env: gym.Env) -> dict[str, np.ndarray]:
    """The goal observation of an ArmEnv (or a wrapper of one) in its current state; privileged."""
    arm = env.unwrapped
    if arm.goal is None:
        raise RuntimeError("call reset() before reading the goal observation")
    sim = arm.sim
    tcp = sim.tcp_pos()
    parts = [sim.robot_state()]
    if ACHIEVED[arm.task_name] == "object":
        obj = sim.object_pos()
        velocity = sim.data.qvel[sim.object_dof : sim.object_dof + 6]  # linear, angular (world frame)
        parts += [obj, obj - tcp, sim.object_quat(), velocity]
        achieved = obj
    else:
        achieved = tcp
    return {"observation": np.concatenate(parts).astype(np.float32),
            "achieved_goal": achieved.astype(np.float32),
            "desired_goal": np.asarray(arm.goal.position, np.float32)}


class GoalObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """An ArmEnv task as a Gymnasium-Robotics goal env: see the module docstring for the goals,
    the actions, the observation, the sparse reward and the episode end. (Recorded in `env.spec`,
    so `env.spec.make()` rebuilds the wrapped env, as gymnasium's env checker does.)"""

    def __init__(self, env: gym.Env, rotation: bool = False) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, rotation=rotation)
        gym.Wrapper.__init__(self, env)
        task = env.unwrapped.task_name
        self.rotation = rotation
        if not rotation:
            self.action_space = position_action_space()
        self.observation_space = goal_observation_space(task)
        self.distance_threshold = TASK_SPECS[task].threshold  # m

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        obs = goal_observation(self.env)
        info["is_success"] = self._is_success(obs)
        return obs, info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        _, _, terminated, truncated, info = self.env.step(action if self.rotation else arm_action(action))
        obs = goal_observation(self.env)
        achieved, desired = obs["achieved_goal"], obs["desired_goal"]
        info["is_success"] = self._is_success(obs)
        reward = float(self.compute_reward(achieved, desired, info))
        terminated = bool(terminated or self.compute_terminated(achieved, desired, info))
        truncated = bool(truncated or self.compute_truncated(achieved, desired, info))
        return obs, reward, terminated, truncated, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """-1 where the goal distance is >= the threshold, 0 below it: float32 of shape (...) for
        goals of shape (..., 3). `info` (a dict, or HER's array of them) is not read."""
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance >= self.distance_threshold).astype(np.float32)

    def compute_terminated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> bool:
        """False: the tasks go on after success (Gymnasium-Robotics' continuing tasks)."""
        return False

    def compute_truncated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> bool:
        """False: the wrapped env's TimeLimit truncates at the task's budget."""
        return False

    def _is_success(self, obs: dict[str, np.ndarray]) -> float:
        return float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None) == 0)


def make_goal_env(task: str, rotation: bool = False, image_size: int = 16, **kwargs: Any) -> GoalObservation:
    """`GoalObservation(gym.make("ami_robot/<task>-v0", image_size=16, **kwargs), rotation)`: the
    frames it still renders are dropped, so they are made at the smallest size."""
    if task not in TASK_SPECS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASK_SPECS)}")
    return GoalObservation(gym.make(TASK_SPECS[task].env_id, image_size=image_size, **kwargs), rotation)
