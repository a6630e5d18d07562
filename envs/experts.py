"""Scripted experts with privileged state, one per task.

`TaskScript` is the closed-loop script itself, bound to one `ArmSim` and one `Goal`: each
call of `act()` reads the simulation (TCP, controller target, object pose) and returns the next
7-D action. Phases are Python generators that yield actions until their condition is met, so a
perturbed arm (noise, a missed grasp) simply keeps trying. The environments run it in a copy
of the simulation at reset to realise their goals; `ScriptedExpert` runs it on an environment
as a policy, optionally with action noise and random "misses" for data collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

from ami_robot.envs.sim import DOWN, ArmSim
from ami_robot.envs.specs import ACTION_HIGH

SPEED = 0.9  # fraction of the action bounds the script uses, leaving room for noise
PUSH_HEIGHT = 0.018  # m: TCP height while pushing (fingertips 13 mm above the table)
PUSHER_RADIUS = 0.015  # m: half-width of the closed fingers
PUSH_STEP = 0.03  # m per action while in contact
GRASP_BELOW_CENTRE = 0.008  # m: TCP height below the object's centre when grasping
LIFT_STEP = 0.05  # m per action while lifting a grasped object
CARRY_LIFT = 0.08  # m: PickPlace carries the object this much higher than it was grasped
REGRASP_OFFSET = 0.007  # m: a held object further than this from the TCP axis is grasped again
CLEARANCE = 0.07  # m: hover height above the grasp height before descending


@dataclass(frozen=True)
class Goal:
    """What a script must achieve; positions in the base frame (m)."""

    position: np.ndarray  # Reach: TCP target; Push / PickPlace: object target (centre); Grasp: lifted centre
    object_half_height: float  # object centre height when resting upright
    object_half_width: float  # half the cube edge / the cylinder radius
    object_kind: str = "cube"  # "cube" (grasped across its faces) or "cylinder" (any yaw will do)


class TaskScript:
    """A scripted expert for `task` on `sim`: `act()` -> action; `done`; `events` (name -> step)."""

    def __init__(self, task: str, sim: ArmSim, goal: Goal) -> None:
        self.task, self.sim, self.goal = task, sim, goal
        self.done = False
        self.steps = 0  # actions returned so far
        self.events: dict[str, int] = {}
        self._phases: Iterator[np.ndarray] = getattr(self, "_" + task.lower())()
        self._high = np.array(ACTION_HIGH)

    def act(self) -> np.ndarray:
        """The next action; once the goal is realised (`done`), actions that keep it (or zeros)."""
        action = None
        if not self.done:
            try:
                action = next(self._phases)
            except StopIteration:
                self.done = True
                self._phases = self._maintain()
        if self.done:
            action = next(self._phases, None)
        self.steps += 1
        return np.zeros(7) if action is None else action

    # ------------------------------------------------------------------ primitives
    def _action(self, pos: np.ndarray, yaw: float, grip: float, step: float = np.inf) -> np.ndarray:
        sim = self.sim
        action = np.zeros(7)
        limit = np.minimum(SPEED * self._high[:3], step)
        action[:3] = np.clip(pos - sim.target_pos, -limit, limit)
        wanted = Rotation.from_euler("z", yaw) * DOWN
        current = Rotation.from_quat(sim.target_quat, scalar_first=True)
        turn = (wanted * current.inv()).as_euler("xyz")
        action[3:6] = np.clip(turn, -SPEED * self._high[3:6], SPEED * self._high[3:6])
        action[6] = grip - sim.gripper_cmd
        return action

    def _move(
        self, where: Callable[[], np.ndarray], yaw: float, grip: float, tol: float, max_steps: int,
        rot_tol: float = np.inf, step: float = np.inf,
    ) -> Iterator[np.ndarray]:
        """Go to where() (re-read each step) until the TCP is within tol (and rot_tol) of it, or max_steps."""
        wanted = Rotation.from_euler("z", yaw) * DOWN
        for _ in range(max_steps):
            pos = where()
            tcp, target = self.sim.tcp_pos(), self.sim.target_pos
            near = max(np.linalg.norm(tcp - pos), np.linalg.norm(target - pos)) < tol
            if near and (wanted * self.sim.tcp_rotation().inv()).magnitude() < rot_tol:
                return
            yield self._action(pos, yaw, grip, step)

    def _hold(self, yaw: float, grip: float, steps: int) -> Iterator[np.ndarray]:
        pos = self.sim.target_pos.copy()
        for _ in range(steps):
            yield self._action(pos, yaw, grip)

    def _mark(self, name: str) -> None:
        """Note the step at which a named moment (a sub-goal the env may render) first happened."""
        self.events.setdefault(name, self.steps)

    # ------------------------------------------------------------------ object geometry
    def _object_yaw(self) -> float:
        """Gripper yaw that lines the fingers up with a cube's faces (within +-pi/4); 0 for a cylinder."""
        if self.goal.object_kind != "cube":
            return 0.0
        w, _, _, z = self.sim.object_quat()
        yaw = 2 * np.arctan2(z, w)
        return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)

    def _grasp_height(self) -> float:
        # the pads reach from 5 mm below the TCP to 31 mm above it: centre them on the object's centre
        # as far as the table allows, so a held object does not swing about the pads
        return max(float(self.sim.object_pos()[2]) - GRASP_BELOW_CENTRE, 0.014)

    def _pick(self, lift: float) -> Iterator[np.ndarray]:
        """Hover over the object, descend, close, lift by `lift` (TCP)."""
        yaw = self._object_yaw()
        z_grasp = self._grasp_height()

        def over(dz: float) -> Callable[[], np.ndarray]:
            return lambda: np.array([*self.sim.object_pos()[:2], z_grasp + dz])

        yield from self._move(over(CLEARANCE), yaw, 0.0, 0.012, 16, rot_tol=0.05)
        self._mark("above_object")
        yield from self._move(over(0.0), yaw, 0.0, 0.006, 8)
        self._mark("around")
        yield from self._hold(yaw, 1.0, 2)
        self._mark("closed")
        start = self.sim.tcp_pos()
        yield from self._move(lambda: start + (0, 0, lift), yaw, 1.0, 0.01, 10, step=LIFT_STEP)

    # ------------------------------------------------------------------ tasks
    def _reach(self) -> Iterator[np.ndarray]:
        yield from self._move(lambda: self.goal.position, 0.0, self.sim.gripper_cmd, 0.004, 20)
        yield from self._hold(0.0, self.sim.gripper_cmd, 1)

    def _grasp(self) -> Iterator[np.ndarray]:
        lift = float(self.goal.position[2] - self.goal.object_half_height)
        yield from self._pick(lift)
        self._mark("grasped")
        yield from self._hold(self._object_yaw(), 1.0, 1)

    def _maintain(self) -> Iterator[np.ndarray]:
        """After the goal: Grasp keeps the object centred between the pads (MuJoCo's soft friction
        lets a held object creep by ~1 mm per step at worst): off-centre or dropped, it is put down
        and picked up again. Other tasks hold still."""
        if self.task != "Grasp":
            return
        lift = float(self.goal.position[2] - self.goal.object_half_height)
        held = Rotation.from_quat(self.sim.target_quat, scalar_first=True)
        yaw = float((held * DOWN.inv()).as_euler("xyz")[2])  # keep the grasp's yaw while holding
        while True:
            sim = self.sim
            offset = np.linalg.norm(sim.object_pos()[:2] - sim.tcp_pos()[:2])
            lifted = sim.object_pos()[2] - self.goal.object_half_height > 0.02
            if offset < REGRASP_OFFSET and lifted:
                yield self._action(sim.target_pos.copy(), yaw, 1.0)
                continue
            if lifted:  # put it down gently, then let go
                down = sim.tcp_pos() - (0, 0, sim.object_pos()[2] - self.goal.object_half_height - 0.003)
                yield from self._move(lambda d=down: d, yaw, 1.0, 0.006, 6, step=LIFT_STEP)
            yield from self._hold(yaw, 0.0, 2)
            yield from self._pick(lift)
            held = Rotation.from_quat(self.sim.target_quat, scalar_first=True)
            yaw = float((held * DOWN.inv()).as_euler("xyz")[2])

    def _pickplace(self) -> Iterator[np.ndarray]:
        yield from self._pick(CARRY_LIFT)
        self._mark("grasped")
        held = Rotation.from_quat(self.sim.target_quat, scalar_first=True)
        yaw = float((held * DOWN.inv()).as_euler("xyz")[2])
        carry_z = self.sim.tcp_pos()[2]

        def above(z: float) -> Callable[[], np.ndarray]:
            # aim the object, not the TCP, at the target: correct for where it sits in the hand
            def where() -> np.ndarray:
                offset = self.sim.object_pos()[:2] - self.sim.tcp_pos()[:2]
                return np.array([*(self.goal.position[:2] - offset), z])
            return where

        yield from self._move(above(carry_z), yaw, 1.0, 0.01, 16)
        self._mark("above_target")
        grip_offset = self.sim.tcp_pos()[2] - self.sim.object_pos()[2]
        yield from self._move(above(self.goal.object_half_height + grip_offset + 0.004), yaw, 1.0, 0.006, 10)
        self._mark("lowered")
        yield from self._hold(yaw, 0.0, 2)
        self._mark("released")
        up = self.sim.tcp_pos() + (0, 0, 0.08)
        yield from self._move(lambda: up, yaw, 0.0, 0.015, 6)
        self._mark("placed")

    def _push(self) -> Iterator[np.ndarray]:
        goal_xy = self.goal.position[:2]
        # contact distance: object half-diagonal (a turned cube) plus the closed fingers' half-width
        reach = self.goal.object_half_width * np.sqrt(2) + PUSHER_RADIUS
        pushing = False
        for _ in range(45):
            obj, tcp = self.sim.object_pos(), self.sim.tcp_pos()
            to_goal = goal_xy - obj[:2]
            dist = float(np.linalg.norm(to_goal))
            if dist < 0.006:
                break
            u = to_goal / dist
            rel = tcp[:2] - obj[:2]
            along = float(rel @ u)
            lateral = float(np.linalg.norm(rel - along * u))
            behind = obj[:2] - u * (reach + 0.012)
            if pushing and (lateral > 0.015 or along > -0.6 * reach or tcp[2] > PUSH_HEIGHT + 0.02):
                pushing = False
            if pushing:
                self._mark("behind")
                # slowly (<= 0.12 m/s): a fast hit tips the cylinder over
                push = obj[:2] - u * reach + u * min(dist, PUSH_STEP)
                yield self._action(np.array([*push, PUSH_HEIGHT]), 0.0, 1.0)
            elif np.linalg.norm(tcp[:2] - behind) > 0.012:
                # go round: up first if low, then over the point behind the object
                high = max(float(tcp[2]), 0.09) if np.linalg.norm(rel) < reach + 0.05 else 0.09
                if tcp[2] < high - 0.02:
                    yield self._action(np.array([*tcp[:2], high]), 0.0, 1.0)
                else:
                    yield self._action(np.array([*behind, high]), 0.0, 1.0)
            else:
                self._mark("above_behind")
                yield self._action(np.array([*behind, PUSH_HEIGHT]), 0.0, 1.0)
                pushing = self.sim.tcp_pos()[2] < PUSH_HEIGHT + 0.012
        self._mark("at_goal")
        up = self.sim.tcp_pos() + (0, 0, 0.06)
        yield from self._move(lambda: up, 0.0, 1.0, 0.015, 5)
        self._mark("pushed")


class ScriptedExpert:
    """The task's scripted expert as a policy on an environment (privileged state).

    Args:
        env: an ami_robot environment (wrappers are looked through with `env.unwrapped`).
        noise_std: Gaussian action noise, as a fraction of each action bound (0 = none).
        miss_prob: per-step probability of a "miss": 1-3 random actions instead of the script's.
        seed: seed of the noise generator.

    Call `reset()` after every `env.reset()`, then `act(obs)` each step.
    """

    def __init__(
        self, env: gym.Env, noise_std: float = 0.0, miss_prob: float = 0.0, seed: int | None = None
    ) -> None:
        if noise_std < 0 or not 0 <= miss_prob <= 1:
            raise ValueError("noise_std must be >= 0 and miss_prob in [0, 1]")
        self.env = env
        self.noise_std, self.miss_prob = noise_std, miss_prob
        self.rng = np.random.default_rng(seed)
        self._script: TaskScript | None = None
        self._miss_left = 0
        self._high = np.array(ACTION_HIGH)

    def reset(self) -> None:
        base = self.env.unwrapped
        self._script = TaskScript(base.task_name, base.sim, base.goal)
        self._miss_left = 0

    @property
    def done(self) -> bool:
        return self._script is not None and self._script.done

    def act(self, obs: object = None) -> np.ndarray:
        if self._script is None:
            raise RuntimeError("call ScriptedExpert.reset() after env.reset()")
        action = self._script.act()
        if self._miss_left == 0 and self.miss_prob and self.rng.random() < self.miss_prob:
            self._miss_left = int(self.rng.integers(1, 4))
        if self._miss_left:
            self._miss_left -= 1
            action = self.rng.uniform(-0.5, 0.5, 7) * self._high
        if self.noise_std:
            action = action + self.rng.normal(0.0, self.noise_std, 7) * self._high
        return np.clip(action, -self._high, self._high).astype(np.float32)
