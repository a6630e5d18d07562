"""The four tabletop tasks: Reach, Grasp, Push, PickPlace.

Each says how to sample a goal, when the scripted expert has realised it, and how to score
the real simulation. Budgets and thresholds come from `TASK_SPECS` (envs/specs.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ami_robot.envs.arm import ArmEnv
from ami_robot.envs.experts import Goal
from ami_robot.envs.randomization import EpisodeSample
from ami_robot.envs.sim import ArmSim

_COMMON = """
    ## Action Space
    `Box(-high, high, (7,), float32)`, the DROID / V-JEPA 2-AC convention, applied to the
    end-effector (TCP) pose target that a differential-IK controller tracks (one action = 0.25 s):

    | Num | Action                                        | Bound | Unit |
    |-----|-----------------------------------------------|-------|------|
    | 0-2 | TCP target x, y, z change (base frame)        | 0.1   | m    |
    | 3-5 | rotation change, extrinsic xyz Euler, applied R_delta * R | 0.5 | rad |
    | 6   | gripper command change (command in [0, 1], 0 open, 1 closed) | 1.0 | 1 |

    The target position is clipped to the workspace box (specs.WORKSPACE_LOW/HIGH), the target
    orientation to specs.ORIENTATION_LIMIT around pointing down and the gripper command to [0, 1].
    NaN / inf entries raise a ValueError naming their indices; a wrong shape or a non-float dtype
    raises ValueError; entries outside the Box are clipped to it. `info["action_clipped"]` is True
    when any part of the action was not applied as commanded: an entry outside the Box (any of the
    7, rotation included), or a target the workspace, orientation or gripper limits cut short
    (by more than 1e-6 m / rad, so float rounding at a limit does not count).

    ## Observation Space
    `Dict(pixels, state, goal_pixels)`:
    - `pixels`: uint8 (image_size, image_size, 3), the exterior camera.
    - `state`: float32[7], TCP xyz (m, base frame), TCP orientation as extrinsic xyz Euler (rad),
      gripper closure in [0, 1] measured from the finger joints (0 open, 1 closed).
    - `goal_pixels`: uint8 (image_size, image_size, 3), the exterior camera at the goal.
    - with `views=("exterior", "wrist")`, also `wrist_pixels` and `goal_wrist_pixels`: the camera on
      the hand, which sees the fingertips and what is between them (reset's info then carries
      `subgoal_wrist_pixels` beside `subgoal_pixels` too).

    ## Starting State
    The object (a cube or an upright cylinder, size, colour and yaw drawn from the
    randomisation arguments) rests in `start_region`; the TCP points down, gripper open, at a
    random point of the start region above the table. The goal is realised by the task's
    scripted expert in a copy of the simulation; reset's info carries `task` (the task's name,
    which the agent may read: it picks the sub-goal maker), `goal_pixels`, `goal_state` (robot
    state at the goal), `goal_task_state` and, where relevant, `goal_object_pos`.

    ## Rewards
    `-info["distance"]` (m). The evaluation protocol uses `info["success"]` only.

    ## Episode End
    Never terminates (not even on success); truncated by TimeLimit at the task's budget
    (`TASK_SPECS[task].budget`, set at registration).

    ## Arguments
    `render_mode` (None or "rgb_array": the exterior camera at `render_size`; `render_views()` then
    gives every observed camera, the goal and the sub-goals at that size, for videos), `image_size`
    (default 128 px), `render_size` (default image_size), `object_kind` ("cube", "cylinder",
    "random"), `object_size_range` (m, cube edge / cylinder diameter), `palette` ("train",
    "heldout" or a list of RGB triples), `start_region` and `goal_region` (((x0, y0), (x1, y1)) m),
    `camera_pos_jitter` (m), `camera_rot_jitter` (rad), `light_jitter` (fraction); all off-by-default
    jitters are 0 (they move the exterior camera only); `views` (cameras observed, "exterior" first:
    ("exterior",) or ("exterior", "wrist")); `subgoals` (the scripted moments rendered as sub-goal
    frames, in order, from the task's `subgoal_events`, or "all" of them; default the task's
    `subgoal_names`).

    ## Info
    Every step: `success` (bool), `distance` (m), `tcp_pos`, `object_pos`, `gripper`,
    `task_state` (tcp xyz, gripper, object xyz), `action_clipped`, plus the task's own keys.
    Privileged: for evaluation and experts only, never for the agent.
"""


class ReachEnv(ArmEnv):
    __doc__ = """Move the end-effector to a goal position above the table.

    ## Description
    The goal is a TCP position sampled over `goal_region` at 8-16 cm above the table and at least
    twice the success threshold (8 cm) from the start; the goal image shows the arm there.
    Success: TCP within 4 cm of the goal (`distance`).
""" + _COMMON

    task_name = "Reach"

    def _sample_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> Goal:
        # At least twice the success threshold from the start, so that standing still never succeeds.
        (x0, y0), (x1, y1) = self.randomization.goal_region
        min_distance = 2 * self.task_spec.threshold
        for _ in range(1000):
            position = rng.uniform((x0, y0, 0.08), (x1, y1, 0.16))
            if np.linalg.norm(position - ep.tcp_start) >= min_distance:
                return Goal(position, ep.half_height, ep.size / 2, ep.kind)
        raise RuntimeError(f"no Reach goal {min_distance} m from the start in the goal region; "
                           "widen goal_region")

    def _realised_goal(self, sim: ArmSim, goal: Goal, force: bool = False) -> Goal | None:
        tcp = sim.tcp_pos()
        if force or np.linalg.norm(tcp - goal.position) < 0.01:
            return replace(goal, position=tcp)
        return None

    def _evaluate(self, sim: ArmSim) -> dict[str, Any]:
        distance = float(np.linalg.norm(sim.tcp_pos() - self.goal.position))
        return {"success": distance < self.task_spec.threshold, "distance": distance,
                "goal_tcp_pos": self.goal.position.copy()}


class GraspEnv(ArmEnv):
    __doc__ = """Grasp the object and lift it.

    ## Description
    The goal lifts the object 6-10 cm off the table at its start position. Success: the object
    is >= 5 cm above its resting height (`lift`) and both finger pads touch it (`held`).
    `distance` is the object's distance to its position in the goal. Reset's info also gives the
    sub-goals (the open hand over the object, the open hand around it, the hand closed on it) as
    `subgoal_pixels`, `subgoal_states` and `subgoal_steps`; the goal image shows it lifted.
""" + _COMMON

    task_name = "Grasp"
    subgoal_events = ("above_object", "around", "closed", "grasped")
    subgoal_names = ("above_object", "around", "closed")

    def _sample_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> Goal:
        lift = rng.uniform(0.06, 0.10)
        position = np.array([*ep.object_xy, ep.half_height + lift])
        return Goal(position, ep.half_height, ep.size / 2, ep.kind)

    def _realised_goal(self, sim: ArmSim, goal: Goal, force: bool = False) -> Goal | None:
        lift = sim.object_pos()[2] - goal.object_half_height
        if force or (lift > self.task_spec.threshold + 0.02 and all(sim.pads_touching(self._object_geom()))):
            return replace(goal, position=sim.object_pos())
        return None

    def _evaluate(self, sim: ArmSim) -> dict[str, Any]:
        lift = float(sim.object_pos()[2] - self.goal.object_half_height)
        held = all(sim.pads_touching(self._object_geom()))
        return {"success": bool(lift >= self.task_spec.threshold and held), "lift": lift, "held": held,
                "distance": float(np.linalg.norm(sim.object_pos() - self.goal.position)),
                "goal_object_pos": self.goal.position.copy()}

    def _object_geom(self) -> int:
        return self._appearance.box if self.episode.kind == "cube" else self._appearance.cylinder


class PushEnv(ArmEnv):
    __doc__ = """Push the object across the table to a goal position.

    ## Description
    The goal moves the object 6-15 cm over the table (inside `goal_region`), pushed by the closed
    gripper. Success: the object within 4 cm of its goal position (`distance`). Reset's info also
    gives the sub-goals (the closed hand above the point behind the object, lowered there, the object
    pushed to its goal with the hand still down) as `subgoal_pixels`, `subgoal_states` and
    `subgoal_steps`; the goal image shows the hand lifted off it.
""" + _COMMON

    task_name = "Push"
    subgoal_events = ("above_behind", "behind", "at_goal", "pushed")
    subgoal_names = ("above_behind", "behind", "at_goal")

    def _sample_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> Goal:
        (x0, y0), (x1, y1) = self.randomization.goal_region
        for _ in range(100):
            angle, radius = rng.uniform(-np.pi, np.pi), rng.uniform(0.06, 0.15)
            xy = ep.object_xy + radius * np.array([np.cos(angle), np.sin(angle)])
            if x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1:
                break
        xy = np.clip(xy, (x0, y0), (x1, y1))
        return Goal(np.array([*xy, ep.half_height]), ep.half_height, ep.size / 2, ep.kind)

    def _realised_goal(self, sim: ArmSim, goal: Goal, force: bool = False) -> Goal | None:
        obj = sim.object_pos()
        upright = abs(obj[2] - goal.object_half_height) < 0.005
        if force or (np.linalg.norm(obj - goal.position) < 0.012 and upright):
            return replace(goal, position=obj)
        return None

    def _evaluate(self, sim: ArmSim) -> dict[str, Any]:
        distance = float(np.linalg.norm(sim.object_pos() - self.goal.position))
        return {"success": distance < self.task_spec.threshold, "distance": distance,
                "goal_object_pos": self.goal.position.copy()}


class PickPlaceEnv(ArmEnv):
    __doc__ = """Pick the object up and place it at a goal position on the table.

    ## Description
    The goal puts the object 10-30 cm away inside `goal_region`. Success: the object within 4 cm
    of its goal position (`distance`), released (`released`: neither finger pad touches it and
    the gripper is at least half open) and resting (`resting`: upright on the table, slower than
    5 cm/s). Reset's info also gives the sub-goals (grasped, above the target, placed) as
    `subgoal_pixels`, `subgoal_states` and `subgoal_steps` (the expert's steps at those moments).
    `subgoals="all"` gives every moment the expert marks: over the object, around it, closed,
    grasped, above the target, `lowered` (set down on the target, still held), released, placed.
""" + _COMMON

    task_name = "PickPlace"
    subgoal_events = ("above_object", "around", "closed", "grasped", "above_target", "lowered", "released",
                      "placed")
    subgoal_names = ("grasped", "above_target", "placed")  # the paper's three; `subgoals=` picks others

    def _sample_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> Goal:
        (x0, y0), (x1, y1) = self.randomization.goal_region
        for _ in range(100):
            xy = rng.uniform((x0, y0), (x1, y1))
            if 0.10 <= np.linalg.norm(xy - ep.object_xy) <= 0.30:
                break
        return Goal(np.array([*xy, ep.half_height]), ep.half_height, ep.size / 2, ep.kind)

    def _realised_goal(self, sim: ArmSim, goal: Goal, force: bool = False) -> Goal | None:
        obj = sim.object_pos()
        ok = np.linalg.norm(obj - goal.position) < 0.015 and self._released(sim) and self._resting(sim, goal)
        if force or ok:
            return replace(goal, position=obj)
        return None

    def _evaluate(self, sim: ArmSim) -> dict[str, Any]:
        distance = float(np.linalg.norm(sim.object_pos() - self.goal.position))
        released, resting = self._released(sim), self._resting(sim, self.goal)
        return {"success": bool(distance < self.task_spec.threshold and released and resting),
                "distance": distance, "released": released, "resting": resting,
                "goal_object_pos": self.goal.position.copy()}

    def _released(self, sim: ArmSim) -> bool:
        geom = self._appearance.box if self.episode.kind == "cube" else self._appearance.cylinder
        return not any(sim.pads_touching(geom)) and sim.gripper_state() < 0.5

    @staticmethod
    def _resting(sim: ArmSim, goal: Goal) -> bool:
        return abs(sim.object_pos()[2] - goal.object_half_height) < 0.01 and sim.object_speed() < 0.05
