"""Cross-entropy method with the V-JEPA 2-AC planner's semantics and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .core import ActionSpace, CostFn, Generators, gaussian, initial_mean, momenta, output, score


@dataclass(frozen=True)
class CEMConfig:
    """CEM settings; defaults are the paper's (800 samples, 10 iterations, top-k 10, horizon 1).

    Momentum m keeps a fraction of the old value: mean <- (1 - m) elite_mean + m mean, and the
    same for std, with separate momenta for the gripper. The momentum values are those the
    reference release's planning examples pass (0.15 / 0.75, gripper 0.15 / 0.15).
    """

    samples: int = 800  # candidate sequences per iteration (per problem)
    iterations: int = 10  # refits of the sampling distribution
    topk: int = 10  # elites kept per iteration
    horizon: int = 1  # planned steps H
    momentum_mean: float = 0.15  # xyz / rotation mean momentum
    momentum_std: float = 0.75  # xyz / rotation std momentum
    momentum_mean_gripper: float = 0.15
    momentum_std_gripper: float = 0.15
    space: ActionSpace = field(default_factory=ActionSpace)

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "topk", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.topk > self.samples:
            raise ValueError(f"topk ({self.topk}) must not exceed samples ({self.samples})")
        if self.topk < 2:
            raise ValueError("topk must be >= 2: the elite std needs two elites")
        for name in ("momentum_mean", "momentum_std", "momentum_mean_gripper", "momentum_std_gripper"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")

    @classmethod
    def paper(cls, **overrides) -> CEMConfig:
        """The V-JEPA 2-AC setting, 800 x 10 (16 s per action on an RTX 4090 with ViT-g)."""
        return replace(cls(), **overrides)

    @classmethod
    def cpu_default(cls, **overrides) -> CEMConfig:
        """Our shipped setting: 128 x 4 = 512 candidate evaluations instead of 8000, for <= 1 s
        per planning step of the default (tiny, 64 px) world model on 2 CPU cores with room for
        a busy machine: one candidate step is ~0.055 GFLOP and ~1 ms there, so this takes
        ~0.5 s (64 x 3: 0.18 s, 160 x 4: 0.61 s, 800 x 10: 12 s; benchmarks/bench_planners.py).
        With another job holding one core, 1 torch thread ran it in 0.71 s and 2 threads in 1.85 s.
        Everything but samples and iterations is the paper's; the lead tunes it.
        """
        return replace(cls(samples=128, iterations=4), **overrides)

@torch.no_grad()  # sampling needs no autograd graph, even through a model with grads on
def cem(
    cost_fn: CostFn,
    config: CEMConfig | None = None,
    *,
    init_mean: torch.Tensor | None = None,
    num_problems: int | None = None,
    generator: Generators = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Plan (H, A), or (E, H, A) for E problems (num_problems or a leading dim on init_mean).

    One batched call of cost_fn per iteration, on (E * samples, H, A).
    """
    cfg = config or CEMConfig()
    space = cfg.space
    mean, single = initial_mean(cfg.horizon, init_mean, num_problems, space, device, generator)
    std = space.init_std(mean.device).to(mean.dtype).expand_as(mean).clone()  # (E, H, A)
    m_mean, m_std = momenta(cfg, mean[0, 0])  # (A,) each

    for _ in range(cfg.iterations):
        # sample: Gaussian around the mean, clipped per coordinate into the box (pinned -> 0)
        samples = space.project(gaussian(mean, std, cfg.samples, generator))  # (E, S, H, A)
        # score: one batch for all problems and samples; non-finite costs rank last
        cost = score(cost_fn, samples)  # (E, S)
        # elites: the top-k lowest costs of each problem
        idx = cost.topk(cfg.topk, dim=1, largest=False).indices  # (E, K)
        elites = samples[torch.arange(len(idx), device=idx.device)[:, None], idx]  # (E, K, H, A)
        # refit: momentum keeps part of the old distribution
        mean = (1 - m_mean) * elites.mean(dim=1) + m_mean * mean  # (E, H, A)
        std = (1 - m_std) * elites.std(dim=1) + m_std * std  # (E, H, A)

    # select: the final mean, the paper's choice (not the best sample)
    return output(mean, single, space)
