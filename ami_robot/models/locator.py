"""The object locator's network: an attentive probe that reads where the object is from frozen latents.

The V-JEPA way to read a frozen encoder: a few learned queries cross-attend to the patch tokens,
then an MLP. Trained on simulator positions (ami_robot.train.locator), used at run time from
images alone (ami_robot.policies.retrieval.locator). The held-out palette's colours are never seen
in training, so the probe also trains on, and at run time also reads, frames whose object is
repainted (`recolour`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

TARGETS = ("object_x", "object_y", "object_z", "tcp_x", "tcp_y", "tcp_z")  # what it reads, in metres


@dataclass(frozen=True)
class LocatorConfig:
    dim: int = 192  # the encoder's token width D
    tokens: int = 64  # patches per frame N
    queries: int = 4  # learned queries
    heads: int = 4
    hidden: int = 256  # MLP width
    outputs: int = len(TARGETS)

    def __post_init__(self) -> None:
        for name in ("dim", "tokens", "queries", "heads", "hidden", "outputs"):
            if getattr(self, name) < 1:
                raise ValueError(f"LocatorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.heads:
            raise ValueError(f"LocatorConfig.dim {self.dim} is not a multiple of heads {self.heads}")


class LocatorNet(nn.Module):
    """Attentive probe: latents (B, N, D) -> standardised (object xyz, TCP xyz) (B, 6).

    `mean` and `std` undo the standardisation (metres = output * std + mean); `fingerprint` is its
    reading, in metres, of the fixed probe image through the encoder it was trained on.
    """

    def __init__(self, config: LocatorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.norm = nn.LayerNorm(c.dim)
        self.pos = nn.Parameter(torch.zeros(c.tokens, c.dim))  # attention alone ignores token order
        self.query = nn.Parameter(torch.randn(c.queries, c.dim) * 0.02)
        self.attn = nn.MultiheadAttention(c.dim, c.heads, batch_first=True)
        self.head = nn.Sequential(nn.Linear(c.queries * c.dim, c.hidden), nn.GELU(),
                                  nn.Linear(c.hidden, c.outputs))
        self.register_buffer("mean", torch.zeros(c.outputs))  # target standardisation
        self.register_buffer("std", torch.ones(c.outputs))
        self.register_buffer("fingerprint", torch.zeros(c.outputs))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.norm(z.float()) + self.pos  # (B, N, D)
        pooled, _ = self.attn(self.query.expand(len(z), -1, -1), z, z)  # (B, Q, D)
        return self.head(pooled.flatten(1))  # (B, outputs)

    def metres(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, N, D) -> (object xyz, TCP xyz) in metres (B, 6)."""
        return self(z) * self.std + self.mean


def recolour(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) with the coloured pixels (the object: the table, the arm and the
    shadows are grey) repainted in one random colour per frame, their shading kept.

    A pixel's chroma (max - min channel) says how much it belongs to the object; its value (max
    channel) is its shading. Random colours cover pale ones like the held-out pink, which a hue
    rotation of the saturated training colours never reaches.
    """
    x = frames.float() / 255.0
    value, low = x.max(-1, keepdim=True).values, x.min(-1, keepdim=True).values
    weight = ((value - low - 0.08) / 0.12).clamp(0, 1)  # 0 for greys, 1 for clearly coloured pixels
    colour = torch.rand(len(x), 1, 1, 3, generator=generator)
    colour = colour / colour.amax(-1, keepdim=True).clamp_min(1e-3)  # its brightest channel at 1
    x = (1 - weight) * x + weight * value * colour
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
