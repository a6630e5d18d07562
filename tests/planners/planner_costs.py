"""Analytic costs with known optima, in the DROID action layout (A = 7)."""

from __future__ import annotations

import torch

from ami_robot.planners import ActionSpace

SAMPLED = [0, 1, 2, 6]
# Box half-width per dim, 1 on pinned dims so errors can be divided by it.
SCALE = ActionSpace().half_width().masked_fill(ActionSpace().half_width() == 0, 1.0)
# An optimum well inside the box: xyz (m) and gripper; rotation 0 (pinned anyway).
TARGET = torch.tensor([0.03, -0.05, 0.02, 0.0, 0.0, 0.0, 0.5])


def normalised(actions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Offset from the target in units of the box half-width, sampled dims only (..., 4)."""
    return ((actions - target) / SCALE)[..., SAMPLED]


def bowl(actions: torch.Tensor) -> torch.Tensor:
    """Quadratic bowl on the first step; minimum 0 at TARGET."""
    return normalised(actions[:, 0], TARGET).pow(2).sum(-1)


RIPPLE, FREQ = 0.1, 2.0


def rastrigin(actions: torch.Tensor) -> torch.Tensor:
    """Rastrigin-like: a bowl with cosine ripples that make local minima (pinned by a test);
    global minimum 0 at TARGET."""
    u = normalised(actions[:, 0], TARGET)
    return (u.pow(2) + RIPPLE * (1 - torch.cos(2 * torch.pi * FREQ * u))).sum(-1)


def last_step(actions: torch.Tensor) -> torch.Tensor:
    """Depends on the last step of the horizon only (like the paper's energy)."""
    return normalised(actions[:, -1], TARGET).pow(2).sum(-1)


START = torch.tensor([0.40, 0.00, 0.30])
GOAL = torch.tensor([0.55, -0.10, 0.35])  # 0.15 m in x: out of reach in one step of 0.075


def reach(actions: torch.Tensor) -> torch.Tensor:
    """Reach-like: distance (m) of the end point after all H steps of delta xyz to GOAL."""
    return (START + actions[:, :, :3].sum(dim=1) - GOAL).norm(dim=-1)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
