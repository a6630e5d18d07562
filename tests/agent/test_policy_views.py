"""The latent policy over two camera views: it reads both views of each frame and of each goal image."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.agent import LatentCostModel, observed_frames
from ami_robot.models import PREDICTOR_CONFIGS
from ami_robot.policies import LatentMPC, SimLatentMPC, goal_images
from ami_robot.world_model import WorldModel

BOTH = ("exterior", "wrist")


@pytest.fixture(scope="module")
def two_view_model() -> WorldModel:
    return WorldModel.random("micro", dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2), seed=0)


def test_grasp_subgoals_of_both_views_come_before_the_final_image() -> None:
    env = gym.make("ami_robot/Grasp-v0", image_size=32, views=BOTH)
    _, info = env.reset(seed=20000)
    images = goal_images(info, "subgoals", BOTH)
    assert len(images) == 4 and all(im.shape == (64, 32, 3) for im in images)  # over, around, closed, lifted
    assert np.array_equal(images[2][32:], info["subgoal_wrist_pixels"][2])
    assert np.array_equal(images[-1], np.concatenate([info["goal_pixels"], info["goal_wrist_pixels"]]))


def test_pickplace_placed_subgoal_gives_way_to_the_final_image() -> None:
    env = gym.make("ami_robot/PickPlace-v0", image_size=32)
    _, info = env.reset(seed=20000)
    images = goal_images(info, "subgoals")
    assert len(images) == 3  # grasped, above the target, final (placed was the expert's last moment)
    assert np.array_equal(images[1], info["subgoal_pixels"][1])
    assert np.array_equal(images[2], info["goal_pixels"])


def test_two_view_policy_plans_from_both_views(two_view_model) -> None:
    env = gym.make("ami_robot/Grasp-v0", image_size=32, views=BOTH)
    obs, info = env.reset(seed=20001)
    policy = LatentMPC(two_view_model, {"name": "cem", "samples": 16, "iterations": 2}, goals="subgoals")
    policy.reset(obs, info)
    action = policy.act(obs)
    assert action.shape == (7,) and np.isfinite(action).all()
    assert policy.schedules[0].pixels.shape == (64, 32, 3)
    obs["wrist_pixels"] = np.zeros_like(obs["wrist_pixels"])  # the wrist view matters to the plan's energy
    policy.act(obs)
    assert policy.energies[0][0] != policy.energies[0][1]


def test_two_view_model_on_a_one_view_env_says_how_to_fix_it(two_view_model) -> None:
    env = gym.make("ami_robot/Reach-v0", image_size=32)
    obs, info = env.reset(seed=20002)
    policy = LatentMPC(two_view_model, {"name": "cem", "samples": 16, "iterations": 1})
    with pytest.raises(ValueError, match=r"make the environment with views=\('exterior', 'wrist'\)"):
        policy.reset(obs, info)


def test_sim_latent_policy_follows_the_subgoals_of_both_views_and_switches_early(two_view_model) -> None:
    env = gym.make("ami_robot/Grasp-v0", image_size=32, views=BOTH)
    obs, info = env.reset(seed=20003)
    planner = {"name": "cem", "samples": 8, "iterations": 1, "topk": 2}
    policy = SimLatentMPC(env.unwrapped, two_view_model, planner,
                          goals="subgoals", subgoal_budgets=(5,), switch_below=10.0)
    policy.reset(obs, info)
    schedule = policy.agent.schedules[0]
    assert len(schedule.goals) == 4 and schedule.budgets == [5, 5, 5]
    policy.act(obs)  # any energy is below 10: the next sub-goal at once
    assert schedule.index == 1 and policy.agent.goal_indices == [0]


def test_view_weights_decide_which_view_the_energy_reads(two_view_model) -> None:
    env = gym.make("ami_robot/Grasp-v0", image_size=32, views=BOTH)
    obs, info = env.reset(seed=20004)
    planner = {"name": "cem", "samples": 16, "iterations": 1}
    policy = LatentMPC(two_view_model, planner, goals="subgoals", view_weights=(1.0, 0.0))
    policy.reset(obs, info)
    model = policy.agent.model
    goal = model.encode_goal(policy.schedules[0].pixels)
    plans = torch.randn(6, 1, 7, generator=torch.Generator().manual_seed(0)) * 0.05
    weighted = model.cost_fn(obs, goal, 1)(plans)
    plain = LatentCostModel(two_view_model).cost_fn(obs, goal, 1)(plans)
    z = two_view_model.encode(observed_frames(obs, BOTH)[None])
    state = torch.as_tensor(obs["state"], dtype=torch.float32)[None, None]
    imagined = two_view_model.rollout(z[:, None].expand(6, -1, -1, -1), state.expand(6, -1, -1), plans)[:, -1]
    half = z.shape[1] // 2  # tokens are view-major: the exterior view's come first
    exterior = WorldModel.energy(imagined[:, :half], goal[:, :half])
    torch.testing.assert_close(weighted, exterior, atol=1e-5, rtol=0)
    assert (weighted - plain).abs().max() > 1e-4
    with pytest.raises(ValueError, match="one weight per camera view"):
        LatentMPC(two_view_model, planner, view_weights=(1.0,))
