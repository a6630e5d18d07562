"""GoalObservation (envs/goals.py): Gymnasium-Robotics' goal conventions over the pixel tasks."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ami_robot.envs import ACTION_HIGH, TASK_SPECS, GoalObservation, goal_observation_space, make_goal_env
from ami_robot.envs.goals import arm_action

WRAPPED = "different from the unwrapped version"  # check_env's note that it was handed a wrapper


@pytest.fixture
def goal_env():
    made = []

    def make(task, **kwargs):
        made.append(make_goal_env(task, **kwargs))
        return made[-1]

    yield make
    for env in made:
        env.close()


def test_check_env(goal_env, task: str) -> None:
    for rotation in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(goal_env(task, rotation=rotation), skip_render_check=True)
        others = [str(w.message) for w in caught if WRAPPED not in str(w.message)]
        assert not others


def test_position_actions_are_the_envs_without_rotation(goal_env) -> None:
    four, seven = goal_env("Push"), goal_env("Push", rotation=True)
    assert four.action_space.shape == (4,) and seven.action_space.shape == (7,)
    np.testing.assert_allclose(four.action_space.high, [*ACTION_HIGH[:3], ACTION_HIGH[6]])
    np.testing.assert_array_equal(arm_action(np.array([0.01, -0.02, 0.03, 0.5], np.float32)),
                                  np.array([0.01, -0.02, 0.03, 0, 0, 0, 0.5], np.float32))
    with pytest.raises(ValueError, match="shape"):
        arm_action(np.zeros(7, np.float32))
    a, _ = four.reset(seed=5)
    b, _ = seven.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = rng.uniform(four.action_space.low, four.action_space.high).astype(np.float32)
        a, *_ = four.step(action)
        b, *_ = seven.step(arm_action(action))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_spaces_and_goals_follow_the_env(goal_env, task: str) -> None:
    env = goal_env(task)
    assert env.observation_space == goal_observation_space(task)
    assert env.observation_space["observation"].shape == ((7,) if task == "Reach" else (23,))
    assert env.distance_threshold == TASK_SPECS[task].threshold
    obs, info = env.reset(seed=3)
    arm = env.unwrapped
    np.testing.assert_allclose(obs["desired_goal"], arm.goal.position, atol=1e-6)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space
        np.testing.assert_allclose(obs["observation"][:7], arm.sim.robot_state(), atol=1e-6)
        moved = info["tcp_pos"] if task == "Reach" else info["object_pos"]
        np.testing.assert_allclose(obs["achieved_goal"], moved, atol=1e-6)
        # the goal distance is the env's own `distance`, and the reward its sparse threshold
        distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        assert distance == pytest.approx(info["distance"], abs=1e-5)
        assert reward == (0.0 if info["distance"] < env.distance_threshold else -1.0)
        assert info["is_success"] == float(reward == 0.0) and not terminated and not truncated
        if task != "Reach":
            np.testing.assert_allclose(obs["observation"][7:10], info["object_pos"], atol=1e-6)
            np.testing.assert_allclose(obs["observation"][10:13], info["object_pos"] - info["tcp_pos"],
                                       atol=1e-6)


def test_compute_reward_is_vectorised(goal_env) -> None:
    env = goal_env("Push")
    rng = np.random.default_rng(0)
    desired = rng.uniform(-0.2, 0.2, (4, 5, 3))
    achieved = desired + rng.normal(0.0, 0.03, (4, 5, 3))  # distances on both sides of 4 cm
    batch = env.compute_reward(achieved, desired, [{}] * 20)
    assert batch.shape == (4, 5) and batch.dtype == np.float32
    each = np.array([[env.compute_reward(achieved[i, j], desired[i, j], {}) for j in range(5)]
                     for i in range(4)])
    np.testing.assert_array_equal(batch, each)
    assert set(np.unique(batch)) == {-1.0, 0.0}
    assert env.compute_reward(np.zeros(3), np.array([0.04, 0.0, 0.0]), None) == -1.0  # at the threshold
    assert env.compute_reward(np.zeros(3), np.array([0.0399, 0.0, 0.0]), None) == 0.0
    assert env.compute_terminated(achieved, desired, {}) is False
    assert env.compute_truncated(achieved, desired, {}) is False


def test_time_limit_and_pixels_left_as_they_were(goal_env) -> None:
    env = goal_env("Reach", image_size=32)
    inner = env.env  # the registered env: pixels, state, goal_pixels, unchanged
    assert set(inner.observation_space.spaces) == {"pixels", "state", "goal_pixels"}
    assert inner.observation_space["pixels"].shape == (32, 32, 3)
    env.reset(seed=0)
    for step in range(1, TASK_SPECS["Reach"].budget + 1):
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        assert not terminated and truncated == (step == TASK_SPECS["Reach"].budget)
    assert "success" in info and "distance" in info  # the env's own verdict stays in info


def test_rebuilt_from_its_spec() -> None:
    env = make_goal_env("Grasp")
    again = env.spec.make()
    assert isinstance(again, GoalObservation) and again.unwrapped.task_name == "Grasp"
    env.close()
    again.close()
