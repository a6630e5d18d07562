"""Gradient descent on the actions: Adam through a differentiable cost, projected into the box."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .core import ActionSpace, CostFn, Generators, draw, initial_mean, output, score


@dataclass(frozen=True)
class GradientConfig:
    """Gradient planner settings. Several starts run as one batch: the first is the initial
    mean (warm start), the rest uniform in the box, so non-convex costs get some coverage.
    """

    starts: int = 32  # parallel starting points per problem
    iterations: int = 60  # Adam steps
    lr: float = 0.05  # Adam step size, in units of each dim's box half-width
    horizon: int = 1  # planned steps H
    space: ActionSpace = field(default_factory=ActionSpace)

    def __post_init__(self) -> None:
        for name in ("starts", "iterations", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def gradient_descent(
    cost_fn: CostFn,
    config: GradientConfig | None = None,
    *,
    init_mean: torch.Tensor | None = None,
    num_problems: int | None = None,
    generator: Generators = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Plan (H, A), or (E, H, A) for E problems; one batched cost and backward per step.

    cost_fn must be differentiable in its input. Returns the lowest-cost iterate seen.
    """
    cfg = config or GradientConfig()
    space = cfg.space
    mean, single = initial_mean(cfg.horizon, init_mean, num_problems, space, device, generator)
    e, h, a = mean.shape
    # Optimise u in [-1, 1] with actions = u * half_width: one step size fits every dim, and
    # pinned dims (half-width 0) stay exactly 0.
    width = space.half_width(mean.device).to(mean.dtype)  # (A,)
    u0 = torch.where(width > 0, mean / width.clamp_min(1e-12), torch.zeros_like(mean))  # (E, H, A)
    starts = draw("rand", (e, cfg.starts, h, a), generator, mean.device, mean.dtype)
    starts = 2 * starts - 1
    starts[:, 0] = u0  # (E, S, H, A)
    u = starts.requires_grad_(True)
    opt = torch.optim.Adam([u], lr=cfg.lr)
    best_cost = torch.full((e, cfg.starts), float("inf"), device=mean.device, dtype=mean.dtype)
    best_u = starts.detach().clone()

    with torch.enable_grad():
        for i in range(cfg.iterations + 1):
            # score: the current iterates, one batch; non-finite costs rank last
            cost = score(cost_fn, u * width)  # (E, S)
            if i == 0 and not cost.requires_grad:
                raise TypeError("gradient_descent needs a differentiable cost_fn: its cost has no "
                                "grad (was it computed under torch.no_grad() or detached?)")
            # keep: the best iterate of every start so far
            better = cost.detach() < best_cost
            best_cost = torch.where(better, cost.detach(), best_cost)
            best_u = torch.where(better[..., None, None], u.detach(), best_u)
            if i == cfg.iterations:
                break
            # step: Adam on the summed finite costs (starts are independent), then project
            # (autograd.grad, not backward: a model's own parameters must not collect grads)
            loss = torch.where(torch.isfinite(cost), cost, torch.zeros_like(cost)).sum()
            (grad,) = torch.autograd.grad(loss, u)
            u.grad = grad.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
            opt.step()
            with torch.no_grad():
                u.clamp_(-1.0, 1.0)

    # select: the best start of each problem
    idx = best_cost.argmin(dim=1)  # (E,)
    plan = best_u[torch.arange(e, device=idx.device), idx] * width  # (E, H, A)
    return output(plan, single, space)
