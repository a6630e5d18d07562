"""MPCAgent and GoalSchedule on a point world (no network, no simulator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from point_world import PointEnv, PointModel, draw

import ami_robot.agent as agent_module
from ami_robot.agent import GoalSchedule, LatentCostModel, MPCAgent
from ami_robot.planners import CEMConfig, GradientConfig, MPPIConfig, RandomShootingConfig

GOAL = np.array([0.6, -0.1, 0.25])  # 0.2 m in x from the start: several steps of <= 0.075


def run(agent: MPCAgent, goal, steps: int, env: PointEnv | None = None) -> tuple[PointEnv, list]:
    env = env or PointEnv()
    obs = env.reset()
    agent.reset(goal)
    actions = []
    for _ in range(steps):
        action = agent.act(obs)
        actions.append(action)
        obs = env.step(action)
    return env, actions


PLANNERS = [CEMConfig.cpu_default(), MPPIConfig(samples=100, iterations=4),
            GradientConfig(starts=8, iterations=20), RandomShootingConfig(samples=500)]


@pytest.mark.parametrize("planner", PLANNERS)
def test_reaches_one_goal_image(planner) -> None:
    env, actions = run(MPCAgent(PointModel(), planner), draw(GOAL), steps=8)
    assert np.linalg.norm(env.pos - GOAL) < 0.02
    for a in actions:
        assert a.dtype == np.float32 and a.shape == (7,)
        assert np.all(np.abs(a[:3]) <= 0.075 + 1e-7) and np.all(a[3:6] == 0)


def test_records_seconds_energies_and_goals() -> None:
    agent = MPCAgent(PointModel())
    run(agent, draw(GOAL), steps=6)
    assert len(agent.planning_seconds) == len(agent.energies) == len(agent.goal_indices) == 6
    assert all(s > 0 for s in agent.planning_seconds)
    assert agent.energies[-1] < agent.energies[0] and agent.energies[-1] < 0.02
    assert agent.goal_indices == [0] * 6


def test_same_seed_same_episode() -> None:
    _, a = run(MPCAgent(PointModel(), seed=5), draw(GOAL), steps=3)
    _, b = run(MPCAgent(PointModel(), seed=5), draw(GOAL), steps=3)
    _, c = run(MPCAgent(PointModel(), seed=6), draw(GOAL), steps=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("fill", ["zero", "repeat", "none"])
def test_warm_start_is_the_shifted_previous_plan(fill: str, monkeypatch) -> None:
    seen = []
    real_plan = agent_module.plan

    def spy(cost_fn, config, **kwargs):
        seen.append(kwargs["init_mean"])
        out = real_plan(cost_fn, config, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(agent_module, "plan", spy)
    run(MPCAgent(PointModel(), CEMConfig.cpu_default(horizon=3), warm_start=fill), draw(GOAL), steps=2)
    first_init, first_plan, second_init = seen[0], seen[1], seen[2]
    assert first_init is None
    if fill == "none":
        assert second_init is None
    else:
        assert torch.equal(second_init[:2], first_plan[1:])
        last = first_plan[2] if fill == "repeat" else torch.zeros(7)
        assert torch.equal(second_init[2], last)


def test_sub_goals_in_order_with_budgets() -> None:
    first, final = np.array([0.4, 0.2, 0.2]), np.array([0.6, 0.2, 0.3])
    model = PointModel()
    agent = MPCAgent(model)
    env, _ = run(agent, GoalSchedule([draw(first), draw(final)], budgets=(5,)), steps=12)
    assert agent.goal_indices == [0] * 5 + [1] * 7
    assert np.linalg.norm(env.pos - final) < 0.02
    assert model.encoded == 2  # each goal encoded once


def test_goal_schedule_budgets_and_the_last_goal_keeps_the_rest() -> None:
    s = GoalSchedule.paper_pick_place(*[np.zeros((2, 2, 3), np.uint8)] * 3)
    indices = []
    for _ in range(30):
        indices.append(s.index)
        s.step(1.0)
    assert indices == [0] * 4 + [1] * 10 + [2] * 16
    s.reset()
    assert s.index == 0
    assert GoalSchedule([np.zeros((2, 2, 3))] * 3, budgets=(4, 10, 4)).budgets == [4, 10]


def test_goal_schedule_switches_early_on_energy_or_plateau() -> None:
    goals = [np.zeros((2, 2, 3), np.uint8)] * 2
    s = GoalSchedule(goals, budgets=(100,), switch_below=0.1)
    assert not s.step(0.5) and s.step(0.05) and s.index == 1
    s = GoalSchedule(goals, budgets=(100,), plateau_steps=3)
    changed = [s.step(e) for e in (1.0, 0.8, 0.8, 0.7999, 0.8)]
    assert changed == [False, False, False, False, True]


@pytest.mark.parametrize("kwargs", [dict(goals=[]), dict(budgets=()), dict(budgets=(1, 2, 3, 4)),
                                    dict(budgets=(0, 1)), dict(budgets=(1, 1), plateau_steps=0)])
def test_goal_schedule_validation(kwargs) -> None:
    args = dict(goals=[np.zeros((2, 2, 3))] * 3, budgets=(1, 1)) | kwargs
    with pytest.raises(ValueError):
        GoalSchedule(**args)


def test_agent_errors() -> None:
    agent = MPCAgent(PointModel())
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(PointEnv().reset())
    with pytest.raises(ValueError, match="GoalSchedule"):
        agent.reset([draw(GOAL), draw(GOAL)])
    with pytest.raises(ValueError):
        MPCAgent(PointModel(), warm_start="sideways")


class StubWorldModel(torch.nn.Module):
    """The WorldModel calls LatentCostModel makes, with their shapes checked."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.calls = []

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        assert frames.dtype == torch.uint8 and frames.dim() == 4 and frames.shape[-1] == 3
        self.calls.append(("encode", tuple(frames.shape)))
        return frames.float().mean(dim=(1, 2))[:, None, :].expand(-1, 4, -1)  # (B, N=4, D=3)

    def planning_cost(self, z_ctx, state_ctx, z_goal, horizon, metric="l1"):
        self.calls.append(("planning_cost", tuple(z_ctx.shape), tuple(state_ctx.shape), horizon))

        def cost(actions: torch.Tensor) -> torch.Tensor:
            return (actions[:, :, :3] - 0.01).abs().sum((1, 2)) + 0 * z_goal.sum()

        return cost


def test_latent_cost_model_adapter() -> None:
    wm = StubWorldModel()
    agent = MPCAgent(LatentCostModel(wm), CEMConfig.cpu_default(horizon=2))
    obs = PointEnv().reset()
    agent.reset(draw(GOAL))
    action = agent.act(obs)
    assert np.allclose(action[:3], 0.01, atol=0.01)
    assert wm.calls == [("encode", (1, 8, 8, 3)), ("encode", (1, 8, 8, 3)),
                        ("planning_cost", (1, 1, 4, 3), (1, 1, 7), 2)]


def test_latent_cost_model_on_a_random_world_model() -> None:
    wm_module = pytest.importorskip("ami_robot.world_model")
    wm = wm_module.WorldModel.random(seed=0)
    agent = MPCAgent(LatentCostModel(wm), CEMConfig.cpu_default(samples=8, iterations=1, topk=4, horizon=2))
    rng = np.random.default_rng(0)
    goal = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)  # not square: the model crops
    obs = {"pixels": rng.integers(0, 256, (80, 96, 3), dtype=np.uint8), "state": np.zeros(7, np.float32)}
    agent.reset(goal)
    a1, a2 = agent.act(obs), agent.act(obs)
    assert a1.shape == a2.shape == (7,) and np.isfinite(a1).all()
    assert len(agent.energies) == 2 and all(e > 0 for e in agent.energies)
    # the energy of the plan is the model's: rollout + energy, the plain way
    z = wm.encode(obs["pixels"][None])
    z_goal = wm.encode(goal[None])
    plan = agent.plan[None]
    direct = wm.energy(wm.rollout(z[:, None], torch.zeros(1, 1, 7), plan)[:, -1], z_goal)
    assert direct.item() == pytest.approx(agent.energies[-1], rel=1e-4)


def test_policy_of_our_env_with_the_latent_model() -> None:
    gymnasium = pytest.importorskip("gymnasium")
    wm_module = pytest.importorskip("ami_robot.world_model")
    import ami_robot.envs  # noqa: F401

    env = gymnasium.make("ami_robot/Reach-v0")
    obs, info = env.reset(seed=0)
    agent = MPCAgent(LatentCostModel(wm_module.WorldModel.random(seed=0)),
                     CEMConfig.cpu_default(samples=8, iterations=1, topk=4))
    agent.reset(info["goal_pixels"])
    for _ in range(2):
        action = agent.act(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
    assert len(agent.planning_seconds) == 2
    env.close()


def test_a_batch_of_episodes_plans_as_each_alone() -> None:
    # MPCAgent over a one-episode CostModel plans E episodes in one planner call (each on its own
    # rows, with its own generator): each gets the plans it gets alone.
    goals = [draw(GOAL), draw(np.array([0.5, 0.1, 0.3]))]
    alone = [run(MPCAgent(PointModel(), seed=s), g, steps=4)[1] for s, g in zip((3, 4), goals, strict=True)]
    agent = MPCAgent(PointModel())
    envs = [PointEnv(), PointEnv()]
    obs = [env.reset() for env in envs]
    agent.reset_batch(goals, seeds=[3, 4])
    batched = [[], []]
    for _ in range(4):
        actions = agent.act_batch(obs)
        assert actions.shape == (2, 7) and actions.dtype == np.float32
        for e in range(2):
            batched[e].append(actions[e])
        obs = [env.step(a) for env, a in zip(envs, actions, strict=True)]
    for one, many in zip(alone, batched, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(one, many, strict=True))
    assert len(agent.loop.planning_seconds) == 4 and [len(e) for e in agent.loop.energies] == [4, 4]


def test_the_loop_warm_starts_only_when_every_episode_has_a_plan(monkeypatch) -> None:
    seen = []
    real_plan = agent_module.plan

    def spy(cost_fn, config, **kwargs):
        seen.append(kwargs["init_mean"])
        return real_plan(cost_fn, config, **kwargs)

    monkeypatch.setattr(agent_module, "plan", spy)
    loop = agent_module.RecedingHorizon(CEMConfig.cpu_default(horizon=2))
    loop.reset([0, 1])

    def cost(actions: torch.Tensor) -> torch.Tensor:  # (E*S, H, 7) -> (E*S,)
        return (actions[:, :, :3] - 0.02).abs().sum((1, 2))

    loop.act(cost)
    loop.act(cost)
    loop.forget(1)  # episode 1's target changed: the batch starts cold, episode 0 with it
    loop.act(cost)
    assert seen[0] is None and seen[1].shape == (2, 2, 7) and seen[2] is None
    with pytest.raises(ValueError, match="warm_start"):
        agent_module.RecedingHorizon(warm_start="sideways")


def test_a_goal_made_in_latent_space_is_planned_toward_unencoded(monkeypatch) -> None:
    class Model:
        views = ("exterior",)
        device = torch.device("cpu")

        def encode_goal(self, pixels: np.ndarray) -> torch.Tensor:
            raise AssertionError("a made latent goal must not be encoded")

    made = torch.full((1, 4, 3), 0.5)
    schedule = GoalSchedule([np.zeros((8, 8, 3), np.uint8)], latents=[made])
    assert schedule.latent is made
    agent = MPCAgent(Model(), CEMConfig(samples=4, iterations=1, topk=2))
    agent.reset(schedule)
    seen = []

    def cost_fn(model, obs, goals, horizon):
        seen.extend(goals)
        return lambda actions: actions.abs().sum(dim=(1, 2))

    monkeypatch.setattr(agent_module, "batch_cost_fn", cost_fn)
    agent.act({"pixels": np.zeros((8, 8, 3), np.uint8), "state": np.zeros(7, np.float32)})
    assert seen[0] is made
    with pytest.raises(ValueError, match="a latent"):
        GoalSchedule([np.zeros((8, 8, 3), np.uint8)] * 2, budgets=[1], latents=[made])
