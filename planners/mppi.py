"""Model predictive path integral control: a softmin-weighted average of noisy candidates."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .core import ActionSpace, CostFn, Generators, gaussian, initial_mean, output, score


@dataclass(frozen=True)
class MPPIConfig:
    """MPPI settings. Costs are standardised per problem before weighting, so the temperature
    is in units of the cost spread and one default serves latent energies and metric costs.
    """

    samples: int = 400  # candidate sequences per iteration (per problem)
    iterations: int = 8  # weighted-mean updates
    temperature: float = 0.1  # softmin temperature, in cost standard deviations
    noise_std: float = 0.5  # sampling std as a fraction of the space's initial std
    noise_decay: float = 0.8  # std multiplier per iteration, to refine as the mean settles
    horizon: int = 1  # planned steps H
    space: ActionSpace = field(default_factory=ActionSpace)

    def __post_init__(self) -> None:
        for name in ("iterations", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2 (the mean plus noise), got {self.samples}")
        for name in ("temperature", "noise_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.noise_decay <= 1:
            raise ValueError(f"noise_decay must lie in (0, 1], got {self.noise_decay}")


@torch.no_grad()  # sampling needs no autograd graph, even through a model with grads on
def mppi(
    cost_fn: CostFn,
    config: MPPIConfig | None = None,
    *,
    init_mean: torch.Tensor | None = None,
    num_problems: int | None = None,
    generator: Generators = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Plan (H, A), or (E, H, A) for E problems; one batched cost call per iteration."""
    cfg = config or MPPIConfig()
    space = cfg.space
    mean, single = initial_mean(cfg.horizon, init_mean, num_problems, space, device, generator)
    std = cfg.noise_std * space.init_std(mean.device).to(mean.dtype).expand_as(mean)  # (E, H, A)

    for i in range(cfg.iterations):
        # sample: Gaussian noise around the mean, clipped into the box; the mean itself is
        # candidate 0 so an update can never lose a mean that is already the best
        samples = space.project(gaussian(mean, std * cfg.noise_decay**i, cfg.samples, generator))
        samples[:, 0] = mean  # (E, S, H, A)
        # score
        cost = score(cost_fn, samples)  # (E, S)
        # weights: softmin over standardised costs; +inf costs get weight 0
        best = cost.min(dim=1, keepdim=True).values
        finite = torch.isfinite(cost)
        spread = torch.where(finite, cost, best).std(dim=1, keepdim=True).clamp_min(1e-12)
        w = torch.softmax(-(cost - best) / (spread * cfg.temperature), dim=1)  # (E, S)
        # refit: the weighted mean of the candidates
        mean = torch.einsum("es,esha->eha", w, samples)  # (E, H, A)

    # select: the final weighted mean
    return output(mean, single, space)
