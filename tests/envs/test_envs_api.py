"""Gymnasium API: env checker, vector envs, rendering, bad actions, seeding, randomisation."""

import os
import subprocess
import sys

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ami_robot.envs import PALETTES, TASK_SPECS


def test_check_env(make_env, task: str) -> None:
    env = make_env(task, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)


def _vec_roundtrip(envs: gym.vector.VectorEnv) -> None:
    try:
        obs, info = envs.reset(seed=[1, 2])
        assert obs["pixels"].shape == (2, 32, 32, 3) and obs["state"].shape == (2, 7)
        obs, reward, terminated, truncated, info = envs.step(np.zeros((2, 7), np.float32))
        assert obs["goal_pixels"].shape == (2, 32, 32, 3)
        assert reward.shape == (2,) and not terminated.any() and not truncated.any()
    finally:
        envs.close()


def test_make_vec_sync() -> None:
    _vec_roundtrip(gym.make_vec(TASK_SPECS["Reach"].env_id, 2, vectorization_mode="sync", image_size=32))


def test_make_vec_async_forkserver() -> None:
    # safe even though this process has rendered already (other tests)
    _vec_roundtrip(gym.make_vec(TASK_SPECS["Reach"].env_id, 2, vectorization_mode="async", image_size=32,
                                vector_kwargs={"context": "forkserver"}))


def test_make_vec_async_default_in_a_fresh_process() -> None:
    script = (
        "import gymnasium as gym, numpy as np, ami_robot.envs\n"
        "envs = gym.make_vec('ami_robot/Reach-v0', 2, vectorization_mode='async', image_size=32)\n"
        "obs, _ = envs.reset(seed=[1, 2]); envs.step(np.zeros((2, 7), np.float32)); envs.close()\n"
        "print(obs['pixels'].shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2, 32, 32, 3)"


def test_render_rgb_array(make_env) -> None:
    env = make_env("Push", render_mode="rgb_array", image_size=32, render_size=64)
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    same = make_env("Push", render_mode="rgb_array", image_size=32)
    obs, _ = same.reset(seed=0)
    np.testing.assert_array_equal(same.render(), obs["pixels"])


def test_reset_info(make_env, task: str) -> None:
    env = make_env(task)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert info["goal_realised"]
    np.testing.assert_array_equal(info["goal_pixels"], obs["goal_pixels"])
    assert info["goal_state"].shape == (7,) and info["goal_task_state"].shape == (7,)
    assert (info["goal_pixels"] != obs["pixels"]).any()
    if task != "Reach":
        assert info["goal_object_pos"].shape == (3,)
    if task == "PickPlace":
        assert len(info["subgoal_pixels"]) == len(info["subgoal_states"]) == len(info["subgoal_steps"]) == 3
        assert info["subgoal_steps"] == sorted(info["subgoal_steps"]) and info["subgoal_steps"][-1] <= 80
    np.testing.assert_allclose(env.unwrapped.goal_task_state, info["goal_task_state"])


def test_no_episode_starts_solved(make_env, task: str) -> None:
    # Standing still must never succeed: Reach goals lie >= 2 x threshold from the start.
    env = make_env(task)
    for seed in range(10_000, 10_012):
        _, info = env.reset(seed=seed)
        assert not info["success"], (task, seed, info["distance"])
        if task == "Reach":
            assert info["distance"] >= 2 * TASK_SPECS[task].threshold - 0.01  # goal realised within 1 cm


def test_nan_and_inf_actions_name_the_entries(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=0)
    action = np.zeros(7, np.float32)
    action[[2, 5]] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"\[2, 5\]"):
        env.step(action)


@pytest.mark.parametrize(
    "action", [np.zeros(6, np.float32), np.zeros((1, 7), np.float32), np.zeros(7, np.int64)]
)
def test_bad_shape_or_dtype(make_env, action: np.ndarray) -> None:
    env = make_env("Reach")
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(action)


def test_out_of_bounds_is_clipped_and_flagged(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(7, np.float32))
    assert info["action_clipped"] is False
    before = env.unwrapped.sim.target_pos.copy()
    _, _, _, _, info = env.step(np.array([5.0, 0, 0, 0, 0, 0, 0], np.float32))
    assert info["action_clipped"] is True
    assert env.unwrapped.sim.target_pos[0] - before[0] <= 0.1 + 1e-9


def test_action_clipped_covers_every_component_and_the_target_limits(make_env) -> None:
    env = make_env("Reach")
    env.reset(seed=0)  # target at x 0.53, z 0.15, gripper command 0
    sim = env.unwrapped.sim

    def clipped(action: list[float]) -> bool:
        return env.step(np.array(action, np.float32))[4]["action_clipped"]

    # the Box's own float32 edge is inside the Box (float32(0.1) > 0.1), with room in the workspace
    assert not clipped([env.action_space.high[0], 0, 0, 0, 0, 0, 0])
    assert clipped([0, 0, 0, 0, 0, 0.9, 0])  # rotation outside the Box
    # in-Box actions the workspace, orientation or gripper limits cut short
    assert clipped([0, 0, 0.1, 0, 0, 0, 0])  # 0.15 + 0.1 > WORKSPACE_HIGH z 0.22
    assert sim.target_pos[2] == pytest.approx(0.22)
    assert clipped([0, 0, 0.05, 0, 0, 0, 0])
    assert not clipped([0, 0, 0, 0, 0, 0, 0])  # resting at a limit is not clipping
    clipped([0, 0, 0, 0.3, 0, 0, 0])
    clipped([0, 0, 0, 0.3, 0, 0, 0])  # tilt at its 0.5 rad limit now
    assert clipped([0, 0, 0, 0.3, 0, 0, 0])
    assert not clipped([0, 0, 0, 0, 0, 0, 0])  # nor is rounding in the Euler round trip there
    assert not clipped([0, 0, 0, 0, 0, 0, 1])
    assert clipped([0, 0, 0, 0, 0, 0, 1])  # command already 1
    assert not clipped([0, 0, 0, 0, 0, 0, -1])

def test_same_seed_same_episode(make_env) -> None:
    env_a, env_b = make_env("PickPlace", object_kind="random"), make_env("PickPlace", object_kind="random")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (6, 7)).astype(np.float32) * env_a.action_space.high
    obs_a, info_a = env_a.reset(seed=11)
    obs_b, info_b = env_b.reset(seed=11)
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    np.testing.assert_array_equal(info_a["subgoal_pixels"], info_b["subgoal_pixels"])
    for action in actions:
        obs_a, *_ = env_a.step(action)
        obs_b, *_ = env_b.step(action)
        np.testing.assert_array_equal(obs_a["pixels"], obs_b["pixels"])
        np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
    obs_c, _ = env_a.reset(seed=12)
    assert (obs_c["goal_pixels"] != info_a["goal_pixels"]).any()


def test_palettes(make_env) -> None:
    train, heldout = set(PALETTES["train"]), set(PALETTES["heldout"])
    assert train and heldout and not train & heldout
    seen = {}
    for palette in ("train", "heldout"):
        env = make_env("Grasp", palette=palette)
        seen[palette] = {tuple(env.reset(seed=s)[1]["object_color"]) for s in range(8)}
        assert seen[palette] <= set(PALETTES[palette])
    assert not seen["train"] & seen["heldout"]
    env = make_env("Grasp", palette=[(0.2, 0.4, 0.6)])
    assert env.reset(seed=0)[1]["object_color"] == (0.2, 0.4, 0.6)
    with pytest.raises(ValueError):
        make_env("Grasp", palette="nope")


def test_object_kind_and_size(make_env) -> None:
    env = make_env("Grasp", object_kind="cylinder", object_size_range=(0.03, 0.03))
    _, info = env.reset(seed=0)
    assert info["object_kind"] == "cylinder" and info["object_size"] == pytest.approx(0.03)
    env = make_env("Grasp", object_kind="random")
    assert {env.reset(seed=s)[1]["object_kind"] for s in range(10)} == {"cube", "cylinder"}


def test_sim_state_round_trip(make_env) -> None:
    env = make_env("Push")
    obs, info = env.reset(seed=4)
    base = env.unwrapped
    snapshot = base.get_sim_state()
    action = np.array([0.05, -0.03, -0.05, 0.1, 0, 0.2, 1.0])
    base.simulate(action)
    first = base.task_state()
    base.set_sim_state(snapshot)
    np.testing.assert_array_equal(base.get_sim_state(), snapshot)
    base.simulate(action)
    np.testing.assert_array_equal(base.task_state(), first)
    assert base.task_state().shape == (7,)
    with pytest.raises(ValueError):
        base.set_sim_state(snapshot[:-1])


def test_renders_headless_even_if_mujoco_was_imported_first() -> None:
    script = (
        "import mujoco, gymnasium as gym, ami_robot.envs\n"
        "env = gym.make('ami_robot/Reach-v0', image_size=32)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs['pixels'].shape, bool(obs['pixels'].std() > 0))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(32, 32, 3) True"


def test_framing_at_64px(make_env) -> None:
    """The prototype failed with 2-4 px objects: the object and the gripper must span many pixels."""
    env = make_env("PickPlace", image_size=64, object_kind="random")
    base = env.unwrapped
    model = base.model
    seg = mujoco.Renderer(model, 64, 64)
    seg.enable_segmentation_rendering()
    gripper = [model.body(name).id for name in ("hand", "left_finger", "right_finger")]
    objects = [base._appearance.box, base._appearance.cylinder]
    try:
        for seed in range(4):
            env.reset(seed=seed)
            for sim in (base.sim, base._goal_sim):  # the start and the realised goal
                seg.update_scene(sim.data, camera="exterior")
                geoms = seg.render()[..., 0]
                obj = np.isin(geoms, objects)
                columns = np.flatnonzero(obj.any(axis=0))
                assert columns.size and columns.max() - columns.min() + 1 >= 6, seed  # >= 6 px wide
                bodies = np.where(geoms >= 0, model.geom_bodyid[np.maximum(geoms, 0)], -1)
                assert np.isin(bodies, gripper).sum() >= 150, seed
    finally:
        seg.close()


def test_camera_and_light_jitter(make_env) -> None:
    fixed = make_env("Reach")
    jittered = make_env("Reach", camera_pos_jitter=0.02, camera_rot_jitter=0.03, light_jitter=0.2)
    base = fixed.unwrapped
    camera = base.model.camera("exterior").id
    poses = set()
    for seed in range(3):
        fixed.reset(seed=seed)
        poses.add(tuple(base.model.cam_pos[camera]))
    assert len(poses) == 1  # off by default
    model = jittered.unwrapped.model
    seen = []
    for seed in range(3):
        jittered.reset(seed=seed)
        seen.append((model.cam_pos[camera].copy(), model.cam_quat[camera].copy(), model.light_diffuse.copy()))
    for (pos_a, quat_a, light_a), (pos_b, quat_b, light_b) in zip(seen, seen[1:], strict=False):
        assert np.abs(pos_a - pos_b).max() > 0 and np.abs(quat_a - quat_b).max() > 0
        assert np.abs(light_a - light_b).max() > 0
    offsets = np.array([pos for pos, _, _ in seen]) - np.array(next(iter(poses)))
    assert np.abs(offsets).max() <= 0.02 + 1e-9
