"""3D multi-block masks over the tubelet grid, as V-JEPA samples them.

A block covers a random rectangle of the (rows, cols) grid through every time step (a tube), so
the context cannot copy a masked patch from a neighbouring frame. Several blocks are unioned into
the target set; the context is what remains. Counts are equalised across the batch by truncation
so the masked tokens stack into one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskConfig:
    num_blocks: int = 4  # blocks unioned into one target mask
    spatial_scale: tuple[float, float] = (0.10, 0.20)  # fraction of the spatial grid per block
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    min_context: int = 4  # never leave fewer context tokens than this

    def __post_init__(self) -> None:
        if self.num_blocks < 1:
            raise ValueError("MaskConfig.num_blocks must be >= 1")
        lo, hi = self.spatial_scale
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError("MaskConfig.spatial_scale must satisfy 0 < lo <= hi < 1")


def sample_block_masks(
    batch: int, grid: tuple[int, int, int], cfg: MaskConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target token indices, each (batch, count), into the time-major flattened grid."""
    t, h, w = grid
    masked = torch.zeros(batch, t, h, w, dtype=torch.bool)
    for b in range(batch):
        for _ in range(cfg.num_blocks):
            scale = cfg.spatial_scale[0] + (cfg.spatial_scale[1] - cfg.spatial_scale[0]) * _uniform(generator)
            log_lo, log_hi = math.log(cfg.aspect_ratio[0]), math.log(cfg.aspect_ratio[1])
            aspect = math.exp(log_lo + (log_hi - log_lo) * _uniform(generator))
            area = scale * h * w
            bh = max(1, min(h, round(math.sqrt(area * aspect))))
            bw = max(1, min(w, round(math.sqrt(area / aspect))))
            top = int(torch.randint(0, h - bh + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - bw + 1, (1,), generator=generator))
            masked[b, :, top : top + bh, left : left + bw] = True
    masked = masked.flatten(1)  # (B, T*H*W)
    n_target = int(masked.sum(1).min())
    n_context = int((~masked).sum(1).min())
    if n_context < cfg.min_context or n_target < 1:
        raise ValueError(
            f"masks leave {n_context} context and {n_target} target tokens on a {grid} grid; "
            "lower MaskConfig.spatial_scale or num_blocks"
        )
    # Keep a random subset of equal size per sample (V-JEPA truncates to the batch minimum).
    order = torch.rand(masked.shape, generator=generator)
    target = _pick(masked, order, n_target)
    context = _pick(~masked, order, n_context)
    return context, target


def _pick(selected: torch.Tensor, order: torch.Tensor, count: int) -> torch.Tensor:
    # Rank selected positions first (randomly among themselves), take `count`, return them sorted.
    score = torch.where(selected, order, order + 2.0)
    idx = score.argsort(dim=1)[:, :count]
    return idx.sort(dim=1).values


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator))
