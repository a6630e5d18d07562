"""The sub-goal maker: from the first frame's latents and the final goal image's, the latents of the
task's intermediate moments (over the object, around it, closed, lifted, ...), one query per moment.

A goal-conditioned jump in latent space, in the spirit of hierarchical world models (HWM): the low
level (the action-conditioned predictor and the planner) reaches each made latent in a few steps;
this network only says which latent comes next. It reads latents and writes latents; it never sees
a simulator state. Trained on the env's sub-goal images of training seeds (ami_robot.train.subgoals,
`ami-robot train-subgoals`); LatentMPC plans with it (ami_robot.policies.subgoals).

The query tokens start as the first frame's tokens plus the moment's embedding; they attend to
themselves and to the goal's tokens (RoPE: the same spatial grid as the predictor, the goal one time
step later). The head starts at zero, so an untrained maker returns the first frame: a sub-goal is
the first frame plus what the network learned must change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, validate_heads
from .rope import rope_tables


@dataclass(frozen=True)
class SubgoalConfig:
    input_dim: int = 192  # the encoder's token width D
    grid: int = 8  # patches per side of one view
    views: int = 2  # camera views per frame, view-major as the world model's latents
    moments: int = 8  # the task's sub-goal moments (its expert's `subgoal_events`)
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 512
    eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("input_dim", "grid", "views", "moments", "dim", "depth", "heads", "mlp_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"SubgoalConfig.{name} must be >= 1, got {getattr(self, name)}")
        validate_heads("SubgoalConfig", self.dim, self.heads)

    @property
    def tokens(self) -> int:
        return self.views * self.grid * self.grid


class SubgoalMaker(nn.Module):
    """(z_start (B, N, D), z_goal (B, N, D), moment (B,) long) -> that moment's latent (B, N, D)."""

    def __init__(self, config: SubgoalConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Linear(c.input_dim, c.dim)
        self.moment = nn.Embedding(c.moments, c.dim)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_dim, c.eps) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim, eps=c.eps)
        self.head = nn.Linear(c.dim, c.input_dim)
        nn.init.zeros_(self.head.weight)  # untrained: the first frame itself
        nn.init.zeros_(self.head.bias)
        rows = torch.arange(c.views * c.grid).repeat_interleave(c.grid).float()  # views stacked top to bottom
        cols = torch.arange(c.grid).repeat(c.views * c.grid).float()
        t = torch.cat([torch.zeros(c.tokens), torch.ones(c.tokens)])  # queries, then the goal a step later
        cos, sin = rope_tables(c.dim // c.heads, t, rows.repeat(2), cols.repeat(2))
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, z_start: torch.Tensor, z_goal: torch.Tensor, moment: torch.Tensor) -> torch.Tensor:
        n = self.config.tokens
        if z_start.shape[1:] != (n, self.config.input_dim) or z_goal.shape != z_start.shape:
            raise ValueError(f"z_start and z_goal must be (B, {n}, {self.config.input_dim}); got "
                             f"{tuple(z_start.shape)} and {tuple(z_goal.shape)}")
        queries = self.embed(z_start) + self.moment(moment)[:, None]  # (B, N, dim)
        x = torch.cat([queries, self.embed(z_goal)], dim=1)  # (B, 2N, dim)
        for block in self.blocks:
            x, _ = block(x, self.cos, self.sin)
        z = z_start + self.head(self.norm(x[:, :n]))  # (B, N, D)
        return F.layer_norm(z, z.shape[-1:])  # normalised as the encoder's latents
