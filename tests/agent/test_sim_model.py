"""SimCostModel on a fake simulator with the base env's snapshot interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from point_world import PointEnv, draw

from ami_robot.agent import MPCAgent
from ami_robot.planners import CEMConfig
from ami_robot.sim_model import SimCostModel, StateCost


class FakeSim(PointEnv):
    """PointEnv with get_sim_state / set_sim_state / simulate / task_state, like our base env."""

    def get_sim_state(self) -> np.ndarray:
        return np.concatenate([self.pos, [self.gripper]])

    def set_sim_state(self, state: np.ndarray) -> None:
        self.pos, self.gripper = state[:3].copy(), float(state[3])

    def simulate(self, action: np.ndarray) -> None:
        self.step(action)

    def task_state(self) -> np.ndarray:
        return np.concatenate([self.pos, [self.gripper], [0.5, 0.0, 0.02]])  # a still object


GOAL = np.array([0.6, -0.1, 0.25])


def goal_pair(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return draw(pos), np.concatenate([pos, [0.0], [0.5, 0.0, 0.02]])


def test_candidates_are_simulated_and_the_state_restored() -> None:
    env = FakeSim()
    obs = env.reset()
    model = SimCostModel(env)
    model.set_goals([goal_pair(GOAL)])
    cost = model.cost_fn(obs, model.encode_goal(draw(GOAL)), horizon=2)
    actions = torch.zeros(3, 2, 7)
    actions[1, :, 0] = 0.05  # +0.1 m in x: 0.1 m closer
    actions[2, :, 0] = -0.05
    c = cost(actions)
    d0 = np.linalg.norm(env.start - GOAL)
    assert c.shape == (3,) and c[1] < c[0] < c[2]
    assert c[0].item() == pytest.approx(d0)
    assert np.array_equal(env.pos, env.start)  # the real episode is untouched
    assert model.simulated_steps == 6


def test_unknown_goal_image_is_an_error() -> None:
    model = SimCostModel(FakeSim())
    model.set_goals([goal_pair(GOAL)])
    with pytest.raises(KeyError, match="set_goals"):
        model.encode_goal(draw(GOAL + 0.1))


def test_state_cost_weights() -> None:
    s, g = np.zeros(7), np.zeros(7)
    s[0], s[3], s[4] = 0.3, 1.0, 0.4
    assert StateCost(tcp=1, object=0)(s, g) == pytest.approx(0.3)
    assert StateCost(tcp=0, object=1)(s, g) == pytest.approx(0.4)
    assert StateCost(tcp=0, object=0, gripper=2)(s, g) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        StateCost(tcp=0, object=0)


def test_agent_reaches_with_the_simulator_model() -> None:
    env = FakeSim()
    obs = env.reset()
    model = SimCostModel(env, StateCost(object=0))
    model.set_goals([goal_pair(GOAL)])
    agent = MPCAgent(model, CEMConfig(samples=32, iterations=3))
    agent.reset(draw(GOAL))
    for _ in range(6):
        env.step(agent.act(obs))
        obs = env._obs()
    assert np.linalg.norm(env.pos - GOAL) < 0.02


def test_on_our_reach_env() -> None:
    gymnasium = pytest.importorskip("gymnasium")
    import ami_robot.envs  # noqa: F401

    env = gymnasium.make("ami_robot/Reach-v0", image_size=32)
    obs, info = env.reset(seed=1)
    base = env.unwrapped
    model = SimCostModel(base, StateCost(object=0.0))
    model.set_goals_from_info(info)
    goal = model.encode_goal(info["goal_pixels"])
    before = base.get_sim_state()
    cost = model.cost_fn(obs, goal, horizon=1)
    toward = np.zeros(7)
    toward[:3] = np.clip(goal[:3] - base.task_state()[:3], -0.075, 0.075)
    c = cost(torch.tensor(np.stack([toward, -toward, np.zeros(7)])[:, None], dtype=torch.float32))
    assert c[0] < c[2] < c[1]
    assert np.array_equal(base.get_sim_state(), before)  # planning left the episode untouched
    # the real step from the restored state is the one the model simulated for candidate 0
    _, _, _, _, step_info = env.step(toward.astype(np.float32))
    assert np.linalg.norm(step_info["tcp_pos"] - goal[:3]) == pytest.approx(c[0].item(), abs=1e-6)
    env.close()


def test_real_frames_are_scored_by_the_latent_energy_and_the_state_restored() -> None:
    gymnasium = pytest.importorskip("gymnasium")
    import dataclasses

    import ami_robot.envs  # noqa: F401
    from ami_robot.models import PREDICTOR_CONFIGS
    from ami_robot.sim_model import SimFramesCostModel
    from ami_robot.world_model import WorldModel

    wm = WorldModel.random("micro", dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2), seed=0)
    env = gymnasium.make("ami_robot/Grasp-v0", image_size=32, views=("exterior", "wrist"))
    obs, info = env.reset(seed=20000)
    base = env.unwrapped
    model = SimFramesCostModel(base, wm)
    goal = model.encode_goal(np.concatenate([info["goal_pixels"], info["goal_wrist_pixels"]]))
    before = base.get_sim_state()
    down = np.zeros(7, np.float32)
    down[2], down[6] = -0.05, 1.0  # lower and close: the wrist view changes
    cost = model.cost_fn(obs, goal, horizon=2)
    c = cost(torch.tensor(np.stack([np.zeros((2, 7)), np.stack([down, down])]), dtype=torch.float32))
    assert np.array_equal(base.get_sim_state(), before) and model.simulated_steps == 4
    assert c[0] != c[1]
    for _ in range(2):  # the frames candidate 1 was scored on are the ones the real steps show
        obs, *_ = env.step(down)
    z = wm.encode(np.concatenate([obs["pixels"], obs["wrist_pixels"]])[None])
    assert wm.energy(z, goal).item() == pytest.approx(c[1].item(), abs=1e-6)
    env.close()
