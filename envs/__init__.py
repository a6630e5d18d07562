"""ami_robot.envs: MuJoCo tabletop arm tasks as Gymnasium environments (mujoco + gymnasium only).

Registered ids (max_episode_steps = the EVAL_PROTOCOL.md budget of each task):
`ami_robot/Reach-v0`, `ami_robot/Grasp-v0`, `ami_robot/Push-v0`, `ami_robot/PickPlace-v0`.

    import gymnasium as gym
    import ami_robot.envs
    env = gym.make("ami_robot/PickPlace-v0", image_size=64)
    obs, info = env.reset(seed=0)   # obs: pixels, state, goal_pixels; info: sub-goals, goal_state, ...

For state-based RL, `make_goal_env(task)` wraps a task in `GoalObservation` (envs/goals.py):
Gymnasium-Robotics' observation / achieved_goal / desired_goal and a vectorised `compute_reward`.
"""

import os

from ami_robot.envs.gl_setup import preload_private_llvms

# Headless rendering: EGL unless the user chose otherwise. Must happen before mujoco is imported.
os.environ.setdefault("MUJOCO_GL", "egl")
# Before mujoco too: triton's LLVM must load before any OpenGL library brings Mesa's (gl_setup.py).
preload_private_llvms()

from gymnasium.envs.registration import register, registry  # noqa: E402

from ami_robot.envs.arm import VIEWS, ArmEnv, stack_views, view_key  # noqa: E402
from ami_robot.envs.experts import Goal, ScriptedExpert, TaskScript  # noqa: E402
from ami_robot.envs.goals import (  # noqa: E402
    GoalObservation,
    goal_observation,
    goal_observation_space,
    make_goal_env,
)
from ami_robot.envs.randomization import PALETTES, RandomizationConfig  # noqa: E402
from ami_robot.envs.specs import (  # noqa: E402
    ACTION_HIGH,
    ACTION_LOW,
    CONTROL_PERIOD,
    HOME_QPOS,
    TASK_SPECS,
    TaskSpec,
)
from ami_robot.envs.tasks import GraspEnv, PickPlaceEnv, PushEnv, ReachEnv  # noqa: E402

ENV_CLASSES = {"Reach": ReachEnv, "Grasp": GraspEnv, "Push": PushEnv, "PickPlace": PickPlaceEnv}

for _name, _spec in TASK_SPECS.items():
    if _spec.env_id not in registry:
        register(
            id=_spec.env_id,
            entry_point=f"ami_robot.envs.tasks:{ENV_CLASSES[_name].__name__}",
            max_episode_steps=_spec.budget,
        )

__all__ = [
    "ACTION_HIGH",
    "ACTION_LOW",
    "CONTROL_PERIOD",
    "ENV_CLASSES",
    "HOME_QPOS",
    "PALETTES",
    "TASK_SPECS",
    "ArmEnv",
    "Goal",
    "GoalObservation",
    "GraspEnv",
    "PickPlaceEnv",
    "PushEnv",
    "RandomizationConfig",
    "ReachEnv",
    "ScriptedExpert",
    "TaskScript",
    "TaskSpec",
    "VIEWS",
    "goal_observation",
    "goal_observation_space",
    "make_goal_env",
    "stack_views",
    "view_key",
]
