"""An RL baseline in the same harness: SAC + HER trained on Reach through the goal observation,
saved as SB3's model.zip and scored by `ami-robot bench` beside the random policy (issue 21).
Nothing asserts success: a few hundred steps teach SAC little; the test is that it runs and is scored.
A missing or unreadable model file is in tests/apps/bad_inputs.py."""

import json

import numpy as np
import pytest
import torch

from ami_robot.envs import make_goal_env
from ami_robot.envs.goals import arm_action
from ami_robot.policies import SB3Policy

sb3 = pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.filterwarnings("ignore")

STEPS = 240  # 8 Reach episodes of 30 actions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """SAC + HER on Reach for STEPS steps (small networks, an update every 4 steps); its model.zip."""
    env = make_goal_env("Reach")
    model = sb3.SAC("MultiInputPolicy", env, replay_buffer_class=sb3.HerReplayBuffer,
                    replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                    learning_starts=60, batch_size=32, buffer_size=STEPS, train_freq=4,
                    policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only contend
    try:
        model.learn(total_timesteps=STEPS)
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("sb3") / "model.zip"
    model.save(path)
    yield model, env, path
    env.close()


def test_her_relabels_with_the_envs_vectorised_reward(trained) -> None:
    model, env, _ = trained
    assert model.num_timesteps == STEPS and model.replay_buffer.size() == STEPS
    batch = model.replay_buffer.sample(64)
    achieved = batch.next_observations["achieved_goal"].numpy()
    desired = batch.observations["desired_goal"].numpy()
    rewards = batch.rewards.numpy().ravel()
    np.testing.assert_array_equal(rewards, env.compute_reward(achieved, desired, None))
    assert (rewards == 0).any()  # hindsight goals are met: relabelling happened


def test_loads_without_unpickling_and_acts_as_sb3s_own_load(trained) -> None:
    _, env, path = trained
    obs, _ = env.reset(seed=10_000)
    policy = SB3Policy(env.unwrapped, path=str(path))
    theirs = sb3.SAC.load(path, env=env, device="cpu")  # unpickles: our own file, in a test only
    for _ in range(3):
        action = policy.act({})  # the env's 7-D action
        expected, _ = theirs.predict(obs, deterministic=True)  # the goal env's 4-D one
        np.testing.assert_allclose(action, arm_action(expected), atol=1e-6)
        obs, *_ = env.step(expected)
    with pytest.raises(ValueError, match="Push's goal observation"):
        push = make_goal_env("Push")
        push.reset(seed=0)
        SB3Policy(push.unwrapped, path=str(path))


@pytest.mark.parametrize("algorithm", ["TD3", "PPO"])
def test_a_model_with_the_envs_own_action(algorithm, tmp_path) -> None:
    env = make_goal_env("Push", rotation=True)  # 7-D actions; untrained networks are enough here
    model = getattr(sb3, algorithm)("MultiInputPolicy", env, policy_kwargs={"net_arch": [8]}, device="cpu",
                                    **({"buffer_size": 10} if algorithm == "TD3" else {"n_steps": 8}))
    model.save(tmp_path / "model.zip")
    obs, _ = env.reset(seed=0)
    policy = SB3Policy(env.unwrapped, path=str(tmp_path / "model.zip"), algorithm=algorithm.lower())
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(policy.act({}), expected, atol=1e-6)
    with pytest.raises(ValueError, match="holds a TD3/DDPG policy" if algorithm == "TD3" else "PPO/A2C"):
        SB3Policy(env.unwrapped, path=str(tmp_path / "model.zip"), algorithm="sac")
    env.close()


def test_bench_scores_the_model_beside_random(trained, cli, tmp_path) -> None:
    _, _, path = trained
    out = cli("bench", "methods=[sb3,random]", f"policies.sb3.path={path}", "tasks=[Reach]", "episodes=2",
              "env.image_size=32", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    header, records = lines[0], lines[1:]
    assert header["config"]["policies"]["sb3"]["path"] == str(path)
    sb3_rows = [r for r in records if r["method"] == "sb3"]
    assert [r["seed"] for r in sb3_rows] == [10_000, 10_001]
    for r in sb3_rows:
        assert r["task"] == "Reach" and r["steps"] == 30 and isinstance(r["success"], bool)
        assert r["final_distance"] >= 0 and r["wall_seconds"] >= 0
    assert "| Reach | sb3 | 2 |" in (tmp_path / "results.md").read_text()
