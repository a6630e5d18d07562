"""Planners over any cost function `actions (B, H, A) -> cost (B,)`; torch only.

Each planner is one function `planner(cost_fn, config, *, init_mean, num_problems, generator)`
returning a plan (H, A), or (E, H, A) for E problems planned in one batch. `plan` picks the
function from the config's type, so callers choose a planner by config alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .cem import CEMConfig, cem
from .core import ACTION_DIM, ActionSpace, CostFn, shift_plan
from .gradient import GradientConfig, gradient_descent
from .icem import ICEMConfig, icem
from .mppi import MPPIConfig, mppi
from .shooting import RandomShootingConfig, random_shooting

PlannerConfig = CEMConfig | ICEMConfig | MPPIConfig | GradientConfig | RandomShootingConfig

PLANNERS: dict[str, tuple[type, Callable[..., torch.Tensor]]] = {
    "cem": (CEMConfig, cem),
    "icem": (ICEMConfig, icem),
    "mppi": (MPPIConfig, mppi),
    "gradient": (GradientConfig, gradient_descent),
    "random_shooting": (RandomShootingConfig, random_shooting),
}


def make_config(name: str, **fields) -> PlannerConfig:
    """The config of the planner called `name`, with fields overridden (e.g. from Hydra).

    A nested `space` may be given as a dict. Unknown names and fields fail loudly.
    """
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose from {sorted(PLANNERS)}")
    space = fields.get("space")
    if isinstance(space, dict):
        space = dict(space)
        if "sampled_dims" in space:  # yaml gives a list; the frozen config holds a tuple
            space["sampled_dims"] = tuple(space["sampled_dims"])
        fields["space"] = ActionSpace(**space)
    return PLANNERS[name][0](**fields)


def plan(cost_fn: CostFn, config: PlannerConfig, **kwargs) -> torch.Tensor:
    """Run the planner that `config` configures; kwargs as the planner functions take them."""
    for cls, fn in PLANNERS.values():
        if type(config) is cls:
            return fn(cost_fn, config, **kwargs)
    raise TypeError(f"not a planner config: {type(config).__name__}")


__all__ = [
    "ACTION_DIM",
    "PLANNERS",
    "ActionSpace",
    "CEMConfig",
    "CostFn",
    "GradientConfig",
    "ICEMConfig",
    "MPPIConfig",
    "PlannerConfig",
    "RandomShootingConfig",
    "cem",
    "gradient_descent",
    "icem",
    "make_config",
    "mppi",
    "plan",
    "random_shooting",
    "shift_plan",
]
