"""Random shooting: score uniform candidates in the box once and keep the best."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .core import ActionSpace, CostFn, Generators, draw, initial_mean, output, score


@dataclass(frozen=True)
class RandomShootingConfig:
    """Random shooting settings: the baseline every iterative planner must beat."""

    samples: int = 4000  # uniform candidates per problem (the initial mean is one of them)
    horizon: int = 1  # planned steps H
    space: ActionSpace = field(default_factory=ActionSpace)

    def __post_init__(self) -> None:
        for name in ("samples", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@torch.no_grad()  # sampling needs no autograd graph, even through a model with grads on
def random_shooting(
    cost_fn: CostFn,
    config: RandomShootingConfig | None = None,
    *,
    init_mean: torch.Tensor | None = None,
    num_problems: int | None = None,
    generator: Generators = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Plan (H, A), or (E, H, A) for E problems; one batched cost call in all."""
    cfg = config or RandomShootingConfig()
    space = cfg.space
    mean, single = initial_mean(cfg.horizon, init_mean, num_problems, space, device, generator)
    e, h, a = mean.shape
    width = space.half_width(mean.device).to(mean.dtype)  # (A,)
    # sample: uniform in the box (pinned dims 0); candidate 0 is the initial mean (warm start)
    u = draw("rand", (e, cfg.samples, h, a), generator, mean.device, mean.dtype)
    samples = (2 * u - 1) * width  # (E, S, H, A)
    samples[:, 0] = mean
    # score
    cost = score(cost_fn, samples)  # (E, S)
    # select: the lowest cost of each problem
    idx = cost.argmin(dim=1)  # (E,)
    return output(samples[torch.arange(e, device=idx.device), idx], single, space)
