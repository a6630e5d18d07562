"""Every planner finds known optima of analytic costs in its default budget.

Tolerances are in units of the box half-width (0.075 m for xyz, 0.75 for the gripper), or in
metres for the reach cost. They were set with margin from 20 seeds each (worst seen:
iterative planners <= 0.017 and reach <= 6 mm; random shooting, a one-shot uniform baseline,
<= 0.19 on bowls, <= 0.5 on the ripples (a neighbouring ripple) and <= 2.8 cm on reach). iCEM's
default is our CPU budget (379 model calls, where CEM's default is the paper's 8000) and it returns
its best sample, not a mean: it gets 0.1.
"""

from __future__ import annotations

import pytest
import torch
from planner_costs import TARGET, bowl, last_step, normalised, rastrigin, reach, seeded

from ami_robot.planners import (
    CEMConfig,
    GradientConfig,
    ICEMConfig,
    MPPIConfig,
    RandomShootingConfig,
    plan,
)

CONFIGS = {"cem": CEMConfig, "icem": ICEMConfig, "mppi": MPPIConfig, "gradient": GradientConfig,
           "random_shooting": RandomShootingConfig}
TOL = {"cem": 0.05, "icem": 0.1, "mppi": 0.05, "gradient": 0.05, "random_shooting": 0.3}
TOL_RIPPLE = {**TOL, "random_shooting": 0.6}
TOL_REACH_M = {"cem": 0.01, "icem": 0.01, "mppi": 0.01, "gradient": 0.01, "random_shooting": 0.05}


@pytest.mark.parametrize("name", CONFIGS)
def test_quadratic_bowl(name: str) -> None:
    p = plan(bowl, CONFIGS[name](), generator=seeded())
    assert p.shape == (1, 7)
    assert normalised(p[0], TARGET).abs().max() < TOL[name]


def test_rastrigin_has_local_minima() -> None:
    # Pin the fact that makes the test below non-convex: along one sampled dim, the cost has
    # more than one local minimum inside the box.
    u = torch.linspace(-1, 1, 2001)
    actions = TARGET.repeat(len(u), 1)
    actions[:, 0] = TARGET[0] + u * 0.075
    c = rastrigin(actions[:, None])
    interior = (c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])
    assert interior.sum() >= 2


@pytest.mark.parametrize("name", CONFIGS)
def test_nonconvex_global_minimum(name: str) -> None:
    p = plan(rastrigin, CONFIGS[name](), generator=seeded())
    assert normalised(p[0], TARGET).abs().max() < TOL_RIPPLE[name]


@pytest.mark.parametrize("name", CONFIGS)
def test_cost_on_last_step_only(name: str) -> None:
    p = plan(last_step, CONFIGS[name](horizon=3), generator=seeded())
    assert p.shape == (3, 7)
    assert normalised(p[-1], TARGET).abs().max() < TOL[name]


@pytest.mark.parametrize("name", CONFIGS)
def test_multi_step_reach_beyond_one_step(name: str) -> None:
    # The goal is 0.15 m away in x: no single step of at most 0.075 m gets there.
    p = plan(reach, CONFIGS[name](horizon=3), generator=seeded())
    assert reach(p[None]).item() < TOL_REACH_M[name]


def test_cpu_default_still_solves_the_bowl() -> None:
    p = plan(bowl, CEMConfig.cpu_default(), generator=seeded())
    assert normalised(p[0], TARGET).abs().max() < 0.15
