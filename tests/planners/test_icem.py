"""iCEM's own parts: coloured noise, the shrinking population, elite reuse, the best plan returned."""

from __future__ import annotations

import pytest
import torch
from planner_costs import TARGET, bowl, normalised, seeded

from ami_robot.planners import ActionSpace, CEMConfig, ICEMConfig, cem, icem, plan
from ami_robot.planners.icem import coloured_noise


def test_coloured_noise_has_unit_variance_and_correlates_neighbours() -> None:
    g = torch.Generator().manual_seed(0)
    white = coloured_noise((4000, 16, 3), 0.0, g, None)
    red = coloured_noise((4000, 16, 3), 2.0, g, None)
    for noise in (white, red):
        assert noise.shape == (4000, 16, 3)
        assert abs(float(noise.std()) - 1.0) < 0.05
    lag1 = {name: float((x[:, 1:] * x[:, :-1]).mean()) for name, x in (("white", white), ("red", red))}
    assert abs(lag1["white"]) < 0.05 and lag1["red"] > 0.5  # smooth sequences, as iCEM draws them


def test_horizon_one_noise_is_white() -> None:
    a = coloured_noise((5, 1, 7), 2.0, torch.Generator().manual_seed(3), None)
    b = torch.randn((5, 1, 7), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


class Counting:
    """A cost that counts the candidates it is asked to score."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        self.calls += actions.shape[0]
        return bowl(actions)


def test_the_population_shrinks_and_carried_elites_cost_no_model_call() -> None:
    cfg = ICEMConfig(samples=128, iterations=4, topk=10)
    counted = Counting()
    icem(counted, cfg, generator=seeded())
    assert [cfg.population(i) for i in range(4)] == [128, 102, 82, 66]
    assert counted.calls == 128 + 102 + 82 + 66 + 1  # the mean is scored once, on the last pass
    cem_counted = Counting()
    cem(cem_counted, CEMConfig(samples=128, iterations=4), generator=seeded())
    assert cem_counted.calls == 512


def test_the_plan_is_the_best_candidate_scored() -> None:
    space = ActionSpace(sampled_dims=(0, 1, 2))  # no gripper: nothing is rounded after the search
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def cost(actions: torch.Tensor) -> torch.Tensor:
        c = bowl(actions)
        seen.append((actions, c))
        return c

    p = icem(cost, ICEMConfig(samples=64, iterations=3, space=space), generator=seeded())
    best = min(float(c.min()) for _, c in seen)
    assert float(bowl(p[None])) == pytest.approx(best)
    assert (p[0, :3] - TARGET[:3]).abs().max() < 0.01  # metres


@pytest.mark.parametrize("bad", [dict(population_decay=0.5), dict(noise_beta=-1.0), dict(keep_elites=1.5),
                                 dict(topk=1), dict(samples=4, topk=8)])
def test_bad_settings_fail_loudly(bad: dict) -> None:
    with pytest.raises(ValueError):
        ICEMConfig(**bad)


def test_at_our_cpu_budget_icem_is_more_exact_than_cem_with_fewer_model_calls() -> None:
    # 10 seeds on the bowl: iCEM 128 x 4 (379 calls) against CEM 128 x 4 (512 calls, the mean returned)
    def error(cfg, seed: int) -> float:
        return float(normalised(plan(bowl, cfg, generator=seeded(seed))[0], TARGET).abs().max())

    icem_err = sorted(error(ICEMConfig(), s) for s in range(10))
    cem_err = sorted(error(CEMConfig.cpu_default(), s) for s in range(10))
    assert icem_err[5] < cem_err[5] and icem_err[-1] < cem_err[-1]
