"""Pin the facts the docs state (PANDA_FACTS.md, EVAL_PROTOCOL.md, envs docstrings)."""

import mujoco
import numpy as np
import pytest
from gymnasium.envs.registration import registry

from ami_robot.envs import ACTION_HIGH, ACTION_LOW, CONTROL_PERIOD, HOME_QPOS, TASK_SPECS
from ami_robot.envs.sim import load_model
from ami_robot.envs.specs import JOINT_HIGH, JOINT_LOW


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_model()


def test_budgets_and_thresholds_match_eval_protocol() -> None:
    expected = {"Reach": (30, 0.04), "Grasp": (40, 0.05), "Push": (60, 0.04), "PickPlace": (80, 0.04)}
    assert {name: (s.budget, s.threshold) for name, s in TASK_SPECS.items()} == expected


def test_registered_ids_use_the_budgets() -> None:
    for spec in TASK_SPECS.values():
        assert registry[spec.env_id].max_episode_steps == spec.budget


def test_control_period_and_physics(model: mujoco.MjModel, make_env) -> None:
    assert CONTROL_PERIOD == 0.25
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert model.opt.timestep == pytest.approx(0.005)
    env = make_env("Reach").unwrapped
    assert env.sim.n_substeps * model.opt.timestep == pytest.approx(0.25)


def test_sizes(model: mujoco.MjModel) -> None:
    # 7 arm hinges + 2 finger slides + the object's free joint; 7 arm servos + 1 gripper actuator
    assert (model.nq, model.nv, model.nu) == (16, 15, 8)
    assert model.camera("exterior").id >= 0 and model.camera("wrist").id >= 0
    assert model.site("tcp").id >= 0


def test_home_keyframe(model: mujoco.MjModel) -> None:
    key = model.key("home")
    ready = [0, -np.pi / 4, 0, -3 * np.pi / 4, 0, np.pi / 2, np.pi / 4]
    np.testing.assert_allclose(key.qpos[:7], ready, atol=1e-6)
    np.testing.assert_allclose(HOME_QPOS, key.qpos[:7], atol=1e-6)
    np.testing.assert_allclose(key.qpos[7:9], [0.04, 0.04])  # gripper open
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, key.id)
    mujoco.mj_forward(model, data)
    # the Panda's ready pose puts the TCP at ~(0.307, 0, 0.487) m, pointing down
    np.testing.assert_allclose(data.site("tcp").xpos, [0.3069, 0.0, 0.4869], atol=1e-3)
    np.testing.assert_allclose(data.site("tcp").xmat.reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-6)


def test_joint_limits_and_actuators(model: mujoco.MjModel) -> None:
    for i, (low, high) in enumerate(zip(JOINT_LOW, JOINT_HIGH, strict=True)):
        joint = model.joint(f"joint{i + 1}")
        np.testing.assert_allclose(joint.range, [low, high])
        assert joint.armature[0] == pytest.approx(0.1) and joint.damping[0] == pytest.approx(1.0)
        act = model.actuator(f"actuator{i + 1}")
        np.testing.assert_allclose(act.ctrlrange, [low, high])
        kp, kv, torque = {0: (4500, 450, 87), 1: (3500, 350, 87), 2: (2000, 200, 12)}[min(i // 2, 2)]
        assert act.gainprm[0] == kp and tuple(act.biasprm[:3]) == (0, -kp, -kv)
        np.testing.assert_allclose(act.forcerange, [-torque, torque])
    np.testing.assert_allclose(JOINT_LOW, [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
    np.testing.assert_allclose(JOINT_HIGH, [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
    for name in ("finger_joint1", "finger_joint2"):
        np.testing.assert_allclose(model.joint(name).range, [0, 0.04])
    np.testing.assert_allclose(model.actuator("gripper").ctrlrange, [0, 0.04])


def test_panda_kinematics_body_frames(model: mujoco.MjModel) -> None:
    np.testing.assert_allclose(model.body("link1").pos, [0, 0, 0.333])
    np.testing.assert_allclose(model.body("link3").pos, [0, -0.316, 0])
    np.testing.assert_allclose(model.body("link4").pos, [0.0825, 0, 0])
    np.testing.assert_allclose(model.body("link5").pos, [-0.0825, 0.384, 0])
    np.testing.assert_allclose(model.body("link7").pos, [0.088, 0, 0])
    np.testing.assert_allclose(model.body("hand").pos, [0, 0, 0.107])
    np.testing.assert_allclose(model.site("tcp").pos, [0, 0, 0.1034])


def test_action_space_bounds(make_env) -> None:
    env = make_env("Reach")
    np.testing.assert_allclose(env.action_space.high, [0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(env.action_space.low, -env.action_space.high)
    np.testing.assert_allclose(ACTION_HIGH, env.action_space.high)
    np.testing.assert_allclose(ACTION_LOW, env.action_space.low)
    assert env.action_space.dtype == np.float32


def test_observation_space(make_env) -> None:
    env = make_env("Push", image_size=48)
    space = env.observation_space
    assert space["pixels"].shape == (48, 48, 3) and space["pixels"].dtype == np.uint8
    assert space["goal_pixels"].shape == (48, 48, 3)
    assert space["state"].shape == (7,) and space["state"].dtype == np.float32
