"""Shared fixtures for the environment tests (small images keep rendering cheap)."""

from collections.abc import Callable, Iterator

import gymnasium as gym
import pytest

import ami_robot.envs  # noqa: F401  (registers the ids, sets MUJOCO_GL before mujoco loads)
from ami_robot.envs import TASK_SPECS

TASKS = sorted(TASK_SPECS)


@pytest.fixture
def make_env() -> Iterator[Callable[..., gym.Env]]:
    """Factory: make_env(task, **kwargs) -> a registered env (image_size 32 unless given); closed after."""
    made: list[gym.Env] = []

    def make(task: str, **kwargs: object) -> gym.Env:
        kwargs.setdefault("image_size", 32)
        env = gym.make(TASK_SPECS[task].env_id, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture(params=TASKS)
def task(request: pytest.FixtureRequest) -> str:
    return request.param
