"""The differential-IK controller, the rotation conventions and the gripper."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ami_robot.envs.sim import DOWN, euler_to_quat, matrix_to_euler, quat_to_euler
from ami_robot.envs.specs import ORIENTATION_LIMIT, WORKSPACE_HIGH, WORKSPACE_LOW


def test_rotation_helpers_match_scipy() -> None:
    rng = np.random.default_rng(0)
    for euler in rng.uniform(-1, 1, (200, 3)) * [3.1, 1.5, 3.1]:
        expected = Rotation.from_euler("xyz", euler)
        assert abs(euler_to_quat(euler) @ expected.as_quat(scalar_first=True)) == pytest.approx(1.0)
        np.testing.assert_allclose(matrix_to_euler(expected.as_matrix()), expected.as_euler("xyz"), atol=1e-9)
        np.testing.assert_allclose(quat_to_euler(expected.as_quat(scalar_first=True)), euler, atol=1e-9)


def test_state_is_tcp_pose_and_gripper(make_env) -> None:
    env = make_env("Reach")
    obs, info = env.reset(seed=0)
    sim = env.unwrapped.sim
    state = obs["state"]
    np.testing.assert_allclose(state[:3], sim.tcp_pos(), atol=1e-6)
    np.testing.assert_allclose(state[3:6], sim.tcp_rotation().as_euler("xyz"), atol=1e-5)
    assert state[6] == pytest.approx(0.0, abs=0.02)  # open at reset
    # pointing down: extrinsic xyz Euler (+-pi, 0, 0) within the start's tilt
    assert abs(abs(state[3]) - np.pi) < 0.05 and abs(state[4]) < 0.05


def test_ik_tracks_a_5cm_step(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=1)
    before = env.unwrapped.sim.tcp_pos()
    _, _, _, _, info = env.step(np.array([0.05, 0, 0, 0, 0, 0, 0], np.float32))
    moved = info["tcp_pos"] - before
    assert moved[0] == pytest.approx(0.05, abs=0.005)
    assert np.linalg.norm(moved[1:]) < 0.005


def test_ik_tracks_rotation_and_each_axis(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=2)
    sim = env.unwrapped.sim
    for axis in range(3):
        for sign in (1, -1):
            before = sim.tcp_pos()
            action = np.zeros(7, np.float32)
            action[axis] = 0.04 * sign
            env.step(action)
            env.step(np.zeros(7, np.float32))
            np.testing.assert_allclose(sim.tcp_pos() - before, action[:3], atol=0.004)
    start = sim.tcp_rotation()
    env.step(np.array([0, 0, 0, 0, 0, 0.3, 0], np.float32))
    env.step(np.zeros(7, np.float32))
    turn = sim.tcp_rotation() * start.inv()  # extrinsic: R_delta * R
    np.testing.assert_allclose(turn.as_rotvec(), [0, 0, 0.3], atol=0.02)


def test_target_stays_in_workspace_and_orientation_limits(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=3)
    sim = env.unwrapped.sim
    rng = np.random.default_rng(3)
    for _ in range(40):
        env.step((rng.choice([-1.0, 1.0], 7) * env.action_space.high).astype(np.float32))
        assert np.all(sim.target_pos >= np.array(WORKSPACE_LOW) - 1e-9)
        assert np.all(sim.target_pos <= np.array(WORKSPACE_HIGH) + 1e-9)
        target = Rotation.from_quat(sim.target_quat, scalar_first=True)
        rel = (target * DOWN.inv()).as_euler("xyz")
        assert np.all(np.abs(rel) <= np.array(ORIENTATION_LIMIT) + 1e-6)


def test_gripper_closes_and_opens(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=4)
    _, _, _, _, info = env.step(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
    assert info["gripper"] > 0.95  # nothing between the fingers
    _, _, _, _, info = env.step(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    assert info["gripper"] < 0.05
    joints = env.unwrapped.sim.data.qpos[7:9]
    assert joints[0] == pytest.approx(joints[1], abs=1e-3)  # coupled fingers
