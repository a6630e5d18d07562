"""The facts other code builds on, in one place: task budgets and thresholds, control period,
action bounds, the home pose and the workspace.

EVAL_PROTOCOL.md states the budgets and thresholds; tests/envs pins them so prose and code agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTROL_PERIOD = 0.25  # s per action (4 Hz, DROID / V-JEPA 2-AC)

# libfranka's ready pose, also the `home` keyframe in assets/scene.xml.
HOME_QPOS = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)

# Panda (FER) joint limits, PANDA_FACTS.md.
JOINT_LOW = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)  # rad
JOINT_HIGH = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)  # rad
JOINT_VEL_MAX = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)  # rad/s
FINGER_MAX = 0.04  # m per finger (0.08 m total opening)

# Action: delta xyz (m), delta rotation as extrinsic xyz Euler (rad), delta gripper command.
ACTION_HIGH = (0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 1.0)
ACTION_LOW = tuple(-h for h in ACTION_HIGH)

# Where the TCP target may go (robot base frame, m): a little more than the table region the
# exterior camera frames (x 0.41..0.63, y -0.15..0.15, TCP up to ~0.16-0.2 m), so the gripper stays
# in view. z from 12 mm: the fingertips end 5 mm past the TCP, so they stay above the table (z = 0).
WORKSPACE_LOW = (0.38, -0.18, 0.012)
WORKSPACE_HIGH = (0.66, 0.18, 0.22)
# Orientation target limits: the rotation from "pointing down" (TCP z = -world z, fingers closing
# along world y: the home pose) as extrinsic xyz Euler, clipped to +-these (rad): tilt up to ~29 deg,
# yaw +-90 deg. Keeps random exploration reachable (joint 7 and the wrist stay inside their limits).
ORIENTATION_LIMIT = (0.5, 0.5, np.pi / 2)


@dataclass(frozen=True)
class TaskSpec:
    """A task's evaluation budget and success threshold (EVAL_PROTOCOL.md)."""

    name: str
    budget: int  # actions at 4 Hz per episode (TimeLimit's max_episode_steps)
    threshold: float  # m: see `success`
    success: str  # what success means, read from the simulator at the end of the budget

    def __post_init__(self) -> None:
        if self.budget <= 0 or self.threshold <= 0:
            raise ValueError(f"{self.name}: budget and threshold must be positive")

    @property
    def env_id(self) -> str:
        return f"ami_robot/{self.name}-v0"


TASK_SPECS: dict[str, TaskSpec] = {
    "Reach": TaskSpec("Reach", 30, 0.04, "end-effector within 4 cm of the goal position"),
    "Grasp": TaskSpec(
        "Grasp", 40, 0.05, "object lifted >= 5 cm above the table and held between the fingers"
    ),
    "Push": TaskSpec("Push", 60, 0.04, "object within 4 cm of its goal position on the table"),
    "PickPlace": TaskSpec(
        "PickPlace", 80, 0.04,
        "object within 4 cm of its goal position and released (gripper open, object resting)",
    ),
}
