"""The planners' contract: paper defaults, seeds, NaNs, bounds, pinned dims, rounding, warm
starts, and E problems in one batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from planner_costs import SCALE, TARGET, bowl, normalised, seeded

from ami_robot.planners import (
    PLANNERS,
    ActionSpace,
    CEMConfig,
    GradientConfig,
    ICEMConfig,
    MPPIConfig,
    RandomShootingConfig,
    make_config,
    plan,
    shift_plan,
)

# Small budgets: these tests check behaviour, not optimisation quality.
SMALL = {
    "cem": CEMConfig(samples=64, iterations=3),
    "icem": ICEMConfig(samples=64, iterations=3),
    "mppi": MPPIConfig(samples=64, iterations=3),
    "gradient": GradientConfig(starts=4, iterations=5),
    "random_shooting": RandomShootingConfig(samples=64),
}
FULL = {name: cls() for name, (cls, _) in PLANNERS.items()}


def test_cem_defaults_are_the_papers() -> None:
    c = CEMConfig()
    assert (c.samples, c.iterations, c.topk, c.horizon) == (800, 10, 10, 1)
    assert (c.momentum_mean, c.momentum_std, c.momentum_mean_gripper, c.momentum_std_gripper) == (
        0.15, 0.75, 0.15, 0.15)
    s = c.space
    assert s.sampled_dims == (0, 1, 2, 6) and s.maxnorm == 0.075 and s.gripper_max == 0.75
    assert s.gripper_round == 0.25
    assert s.half_width().tolist() == pytest.approx([0.075] * 3 + [0.0] * 3 + [0.75])
    assert s.init_std().tolist() == pytest.approx([0.075] * 3 + [0.0] * 3 + [1.0])
    assert CEMConfig.paper() == c


def test_cpu_default_is_a_smaller_budget() -> None:
    cpu = CEMConfig.cpu_default()
    assert cpu.samples * cpu.iterations < 800 * 10
    assert dataclasses.replace(cpu, samples=800, iterations=10) == CEMConfig()


@pytest.mark.parametrize("bad", [
    dict(samples=0), dict(topk=1), dict(samples=5, topk=10), dict(momentum_std=1.0),
    dict(horizon=0), dict(space=dict(maxnorm=0.0)),
])
def test_bad_config_fails_loudly(bad: dict) -> None:
    with pytest.raises(ValueError):
        make_config("cem", **bad)


@pytest.mark.parametrize("bad", [dict(sampled_dims=(0, 0)), dict(sampled_dims=(7,)), dict(gripper_round=-1)])
def test_bad_action_space_fails_loudly(bad: dict) -> None:
    with pytest.raises(ValueError):
        ActionSpace(**bad)


def test_make_config_and_dispatch() -> None:
    cfg = make_config("mppi", samples=32, space={"sampled_dims": [0, 1, 2, 3, 4, 5, 6]})
    assert isinstance(cfg, MPPIConfig) and cfg.space.sampled_dims == tuple(range(7))
    with pytest.raises(ValueError, match="unknown planner"):
        make_config("nope")
    with pytest.raises(TypeError):
        make_config("cem", no_such_field=1)
    with pytest.raises(TypeError, match="not a planner config"):
        plan(bowl, ActionSpace())


@pytest.mark.parametrize("name", PLANNERS)
def test_same_seed_same_plan(name: str) -> None:
    a = plan(bowl, SMALL[name], generator=seeded(3))
    b = plan(bowl, SMALL[name], generator=seeded(3))
    c = plan(bowl, SMALL[name], generator=seeded(4))
    assert torch.equal(a, b)
    if name != "gradient":  # its best start may be the deterministic warm start, whatever the seed
        assert not torch.equal(a, c)


def _nan_left_half(actions: torch.Tensor) -> torch.Tensor:
    cost = bowl(actions)
    return torch.where(actions[:, 0, 0] < 0, torch.full_like(cost, float("nan")), cost)


@pytest.mark.parametrize("name", PLANNERS)
def test_nan_and_inf_costs_rank_worst(name: str) -> None:
    def cost(actions: torch.Tensor) -> torch.Tensor:
        c = _nan_left_half(actions)
        return torch.where(actions[:, 0, 1] > 0.06, torch.full_like(c, float("inf")), c)

    p = plan(cost, FULL[name], generator=seeded())
    assert torch.isfinite(p).all()
    assert normalised(p[0], TARGET).abs().max() < 0.3


@pytest.mark.parametrize("name", PLANNERS)
def test_all_nan_raises(name: str) -> None:
    with pytest.raises(ValueError, match="no finite cost"):
        plan(lambda a: torch.full((a.shape[0],), float("nan")) + 0 * a.sum((1, 2)), SMALL[name],
             generator=seeded())


@pytest.mark.parametrize("name", PLANNERS)
def test_plans_stay_in_bounds(name: str) -> None:
    far = torch.tensor([1.0, -1.0, 1.0, 0.5, 0.5, 0.5, 5.0])  # outside the box on every dim

    def cost(actions: torch.Tensor) -> torch.Tensor:
        return (actions[:, 0] - far).pow(2).sum(-1)

    warm = torch.tensor([[0.5, -0.5, 0.5, 0.3, 0.3, 0.3, 3.0]])  # an out-of-box warm start
    p = plan(cost, SMALL[name], init_mean=warm, generator=seeded())
    width = SMALL[name].space.half_width()
    assert (p.abs() <= width + 1e-7).all()
    assert (p[0, [0, 2, 6]] > 0.5 * width[[0, 2, 6]]).all()  # pushed towards the far corner


@pytest.mark.parametrize("name", PLANNERS)
def test_pinned_dims_stay_zero(name: str) -> None:
    wants_rotation = torch.tensor([0.0, 0.0, 0.0, 0.3, -0.3, 0.3, 0.0])

    def cost(actions: torch.Tensor) -> torch.Tensor:
        return (actions[:, 0] - wants_rotation).pow(2).sum(-1)

    p = plan(cost, SMALL[name], init_mean=wants_rotation[None], generator=seeded())
    assert torch.equal(p[0, 3:6], torch.zeros(3))


def test_rotation_can_be_sampled_when_asked() -> None:
    wants = torch.tensor([0.0, 0.0, 0.0, 0.05, -0.05, 0.02, 0.0])
    space = ActionSpace(sampled_dims=tuple(range(7)))
    p = plan(lambda a: (a[:, 0] - wants).pow(2).sum(-1), CEMConfig(space=space), generator=seeded())
    assert (p[0, 3:6] - wants[3:6]).abs().max() < 0.01


@pytest.mark.parametrize("name", PLANNERS)
@pytest.mark.parametrize("gripper, expected", [(0.1, 0.0), (-0.2, 0.0), (0.5, 0.5), (-0.6, -0.6)])
def test_gripper_rounding(name: str, gripper: float, expected: float) -> None:
    # Only the gripper is searched, so every planner pins it down well in its default budget.
    cfg = dataclasses.replace(FULL[name], space=ActionSpace(sampled_dims=(6,)))
    p = plan(lambda a: (a[:, 0, 6] - gripper).pow(2), cfg, generator=seeded())
    assert p[0, 6].item() == pytest.approx(expected, abs=0.02)
    if expected == 0.0:
        assert p[0, 6].item() == 0.0


def test_finish_rounds_small_grippers_only() -> None:
    plan_ = torch.tensor([[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2499], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.25]])
    out = ActionSpace().finish(plan_)
    assert out[0, 6] == 0.0 and out[1, 6] == -0.25 and out[0, 0] == pytest.approx(0.01)


def test_gripper_snap_makes_surviving_moves_whole() -> None:
    # rounded first (0.2 -> 0), then every move left becomes +-gripper_max; xyz untouched
    plan_ = torch.tensor([[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2], [0.0] * 6 + [0.3], [0.0] * 6 + [-0.5]])
    out = ActionSpace(gripper_snap=True).finish(plan_)
    assert out[:, 6].tolist() == [0.0, 0.75, -0.75] and out[0, 0] == pytest.approx(0.01)
    assert ActionSpace(gripper_snap=True, gripper_max=0.5).finish(plan_)[1, 6] == 0.5


@pytest.mark.parametrize("name", PLANNERS)
def test_every_planner_returns_snapped_grippers(name: str) -> None:
    cfg = dataclasses.replace(FULL[name], space=ActionSpace(sampled_dims=(6,), gripper_snap=True))
    p = plan(lambda a: (a[:, 0, 6] - 0.4).pow(2), cfg, generator=seeded())
    assert p[0, 6].item() == 0.75


def test_no_rounding_when_disabled() -> None:
    target = TARGET.clone()
    target[6] = 0.1
    cfg = CEMConfig(space=ActionSpace(gripper_round=0.0))
    p = plan(lambda a: ((a[:, 0] - target) / SCALE).pow(2).sum(-1), cfg, generator=seeded())
    assert p[0, 6].item() == pytest.approx(0.1, abs=0.05)


def test_shift_plan() -> None:
    p = torch.arange(2 * 3 * 7, dtype=torch.float32).reshape(2, 3, 7)
    z = shift_plan(p)
    assert torch.equal(z[:, :2], p[:, 1:]) and torch.equal(z[:, 2], torch.zeros(2, 7))
    r = shift_plan(p, fill="repeat")
    assert torch.equal(r[:, :2], p[:, 1:]) and torch.equal(r[:, 2], p[:, 2])
    with pytest.raises(ValueError):
        shift_plan(p, fill="nope")


@pytest.mark.parametrize("name", PLANNERS)
def test_warm_start_is_used(name: str) -> None:
    # With a narrow initial spread and one short iteration, only a warm start near the optimum
    # can end near it (the gradient planner and random shooting keep it as a candidate).
    narrow = ActionSpace(xyz_std=0.005, gripper_std=0.05)
    cfg = dataclasses.replace(SMALL[name], space=narrow)
    if hasattr(cfg, "iterations"):
        cfg = dataclasses.replace(cfg, iterations=1)
    else:  # random shooting: the warm start and one uniform candidate
        cfg = dataclasses.replace(cfg, samples=2)
    warm = plan(bowl, cfg, init_mean=TARGET[None], generator=seeded())
    cold = plan(bowl, cfg, generator=seeded())
    assert bowl(warm[None]) < 0.05 < bowl(cold[None])


@pytest.mark.parametrize("name", PLANNERS)
def test_many_problems_in_one_batch(name: str) -> None:
    targets = torch.stack([TARGET, -TARGET, TARGET * torch.tensor([1, 0, 1, 0, 0, 0, -1])])  # (E, A)
    e, calls = len(targets), []

    def cost(actions: torch.Tensor) -> torch.Tensor:
        calls.append(actions.shape)
        per_problem = targets.repeat_interleave(actions.shape[0] // e, dim=0)  # problem-major rows
        return ((actions[:, 0] - per_problem) / SCALE).pow(2).sum(-1)

    cfg = FULL[name]
    p = plan(cost, cfg, num_problems=e, generator=seeded())
    assert p.shape == (e, 1, 7)
    tol = {"random_shooting": 0.3, "icem": 0.1}.get(name, 0.05)  # as in test_optima.py
    for k in range(e):
        assert normalised(p[k, 0], targets[k]).abs().max() < tol
    assert all(s[0] % e == 0 for s in calls)
    # one batched call per iteration (the gradient planner also scores its final iterate)
    expected_calls = 1 if name == "random_shooting" else cfg.iterations + (name == "gradient")
    assert len(calls) == expected_calls


@pytest.mark.parametrize("name", PLANNERS)
def test_leading_dim_on_init_mean_means_many_problems(name: str) -> None:
    init = torch.zeros(2, 2, 7)
    cfg = dataclasses.replace(SMALL[name], horizon=2)
    assert plan(bowl, cfg, init_mean=init, generator=seeded()).shape == (2, 2, 7)
    assert plan(bowl, cfg, init_mean=init[0], generator=seeded()).shape == (2, 7)
    assert plan(bowl, cfg, init_mean=init[0], num_problems=3, generator=seeded()).shape == (3, 2, 7)
    with pytest.raises(ValueError):
        plan(bowl, cfg, init_mean=torch.zeros(3, 7), generator=seeded())


def test_gradient_needs_a_differentiable_cost() -> None:
    def detached(actions: torch.Tensor) -> torch.Tensor:
        return bowl(actions).detach()

    with pytest.raises(TypeError, match="differentiable"):
        plan(detached, SMALL["gradient"], generator=seeded())


def test_gradient_works_under_no_grad() -> None:
    with torch.no_grad():
        p = plan(bowl, GradientConfig(), generator=seeded())
    assert normalised(p[0], TARGET).abs().max() < 0.05


def test_cost_of_the_wrong_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\(B,\)"):
        plan(lambda a: a.sum(-1), SMALL["cem"], generator=seeded())
