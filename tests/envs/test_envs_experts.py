"""Scripted experts succeed, random actions do not, and the physics stays sane."""

import mujoco
import numpy as np
import pytest

from ami_robot.envs import TASK_SPECS, ScriptedExpert


def run_expert(env, seed: int, **kwargs) -> dict:
    expert = ScriptedExpert(env, **kwargs)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    for _ in range(TASK_SPECS[env.unwrapped.task_name].budget):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        assert not terminated
    assert truncated  # TimeLimit at the budget
    return info


@pytest.mark.parametrize("kind", ["cube", "cylinder"])
def test_expert_succeeds(make_env, task: str, kind: str) -> None:
    # benchmarks/bench_envs.py measures >= 95% over 100 seeds; a held cylinder occasionally creeps
    # off the pads and the expert re-grasps it, so allow one miss in four here
    env = make_env(task, object_kind=kind)
    results = [run_expert(env, seed) for seed in range(4)]
    assert sum(info["success"] for info in results) >= 3, [info["distance"] for info in results]


def test_noisy_expert_acts_in_bounds(make_env) -> None:
    env = make_env("PickPlace")
    expert = ScriptedExpert(env, noise_std=0.1, miss_prob=0.2, seed=0)
    obs, _ = env.reset(seed=0)
    expert.reset()
    actions = np.array([expert.act(obs) for _ in range(20)])
    assert env.action_space.contains(actions[0]) and np.all(np.abs(actions) <= env.action_space.high)
    clean = ScriptedExpert(env)
    clean.reset()
    assert not np.allclose(actions[0], clean.act(obs))


def test_random_actions_mostly_fail(make_env, task: str) -> None:
    env = make_env(task)
    rng = np.random.default_rng(0)
    wins = 0
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(TASK_SPECS[task].budget):
            _, _, _, _, info = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        wins += info["success"]
    assert wins <= 1


def extreme_actions(env, steps: int, seed: int) -> int:
    """Bang-bang and uniform random actions, a reset every 50 steps, the physics checked every step.

    The arm can crush the light object into the table with hundreds of newtons, which MuJoCo's soft
    contacts answer with a transient penetration; this returns how many steps had more than 15 mm
    (the benchmark saw 8 in 10,000, the deepest 34 mm) and checks that the object always comes back:
    at the end of every segment the gripper opens and rises, and the object must rest on the table.
    """
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    high = env.action_space.high
    deep = 0
    for step in range(steps):
        if step % 50 == 0:
            env.reset(seed=seed * 1000 + step)
        if rng.random() < 0.5:
            action = rng.choice([-1.0, 1.0], 7) * high
        else:
            action = rng.uniform(-high, high)
        base.simulate(action)
        data = base.sim.data
        assert np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel)), step
        warnings = {mujoco.mjtWarning(i).name: w.number for i, w in enumerate(data.warning) if w.number}
        assert not warnings, (step, warnings)
        assert _lowest_point(base) > -0.05, (step, base.sim.object_pos())
        deep += _lowest_point(base) < -0.015
        if step % 50 == 49:  # let go, rise, settle: the object rests on (not in) the table
            for _ in range(3):
                base.simulate(np.array([0, 0, 0.1, 0, 0, 0, -1.0]))
            assert _lowest_point(base) > -0.003, (step, base.sim.object_pos())
    return deep


def _lowest_point(base) -> float:
    """Height above the table top (z = 0) of the object's lowest point, from its pose and shape."""
    sim, episode = base.sim, base.episode
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, sim.object_quat())
    axes_z = rot.reshape(3, 3)[2]  # world z of the object's x, y, z axes
    r = episode.size / 2
    if episode.kind == "cube":
        reach = r * np.abs(axes_z).sum()
    else:  # cylinder: half-height along its axis plus the rim's radius sideways
        reach = episode.half_height * abs(axes_z[2]) + r * np.sqrt(max(0.0, 1 - axes_z[2] ** 2))
    return float(sim.object_pos()[2] - reach)


def test_stability_short(make_env, task: str) -> None:
    assert extreme_actions(make_env(task, object_kind="random"), steps=150, seed=1) == 0


@pytest.mark.slow
def test_stability_10k(make_env, task: str) -> None:
    assert extreme_actions(make_env(task, object_kind="random"), steps=10_000, seed=2) <= 20
