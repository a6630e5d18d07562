"""The V-JEPA 2 video encoder: a plain ViT over 3D tubelets with 3D RoPE (no CLS, no pos_embed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import Block, validate_heads
from .rope import grid_positions, rope_tables


@dataclass(frozen=True)
class EncoderConfig:
    img_size: int = 64  # crop size in pixels (square); inputs may be any multiple of patch_size
    patch_size: int = 8  # pixels per patch side
    tubelet_size: int = 2  # frames per tubelet (the Conv3d's temporal kernel and stride)
    in_chans: int = 3
    dim: int = 192  # embed dim D
    depth: int = 6  # blocks
    heads: int = 3
    mlp_dim: int = 768  # MLP hidden width
    eps: float = 1e-6  # LayerNorm eps

    def __post_init__(self) -> None:
        for name in ("img_size", "patch_size", "tubelet_size", "in_chans", "dim", "depth", "heads",
                     "mlp_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        validate_heads("EncoderConfig", self.dim, self.heads)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def grid(self) -> int:
        """Patches per side at img_size."""
        return self.img_size // self.patch_size

    @property
    def tokens_per_tubelet(self) -> int:
        return self.grid * self.grid


ENCODER_CONFIGS: dict[str, EncoderConfig] = {
    # The released sizes (shared/VJEPA2_FACTS.md): 2 x 16 x 16 tubelets at 256 px (384 for g-384).
    "vit_large": EncoderConfig(img_size=256, patch_size=16, dim=1024, depth=24, heads=16, mlp_dim=4096),
    "vit_huge": EncoderConfig(img_size=256, patch_size=16, dim=1280, depth=32, heads=16, mlp_dim=5120),
    "vit_giant": EncoderConfig(img_size=256, patch_size=16, dim=1408, depth=40, heads=22, mlp_dim=6144),
    "vit_giant_384": EncoderConfig(img_size=384, patch_size=16, dim=1408, depth=40, heads=22, mlp_dim=6144),
    # Ours, at 64 px with 8 px patches (64 tokens per frame). head dim 48: RoPE 16+16+16.
    "micro": EncoderConfig(dim=96, depth=2, heads=2, mlp_dim=384),
    # head dim 64: RoPE segments 20 + 20 + 20 and 4 dims unrotated, as in ViT-L / ViT-g.
    "tiny": EncoderConfig(dim=192, depth=6, heads=3, mlp_dim=768),
    "small": EncoderConfig(dim=384, depth=12, heads=6, mlp_dim=1536),
}


def split_views(frames: torch.Tensor, views: int) -> torch.Tensor:
    """Frames that stack `views` square camera views top to bottom, (B, V*S, S, C) -> (B*V, S, S, C),
    view-major within each frame (frame b's view v is row b * V + v). Each view is encoded alone."""
    if views == 1:
        return frames
    b, h, w, c = frames.shape
    if h != views * w:
        raise ValueError(f"frames of {views} views stack {views} squares top to bottom: expected height "
                         f"{views} x width {w} = {views * w}, got {h} (see ami_robot.envs.stack_views)")
    return frames.reshape(b * views, w, w, c)  # the views are consecutive row blocks of each frame


class PatchEmbed(nn.Module):
    """Conv3d with kernel = stride = (tubelet, patch, patch): video -> tokens, time-major."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        size = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_chans, cfg.dim, kernel_size=size, stride=size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, T, H, W) -> (B, T'*H'*W', D)


class VisionTransformer(nn.Module):
    """V-JEPA 2 encoder: video (B, C, T, H, W) -> patch tokens (B, T/t * H/p * W/p, D)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = PatchEmbed(c)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_dim, c.eps) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim, eps=c.eps)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        c = self.config
        _, _, t, h, w = video.shape
        if t % c.tubelet_size or h % c.patch_size or w % c.patch_size:
            raise ValueError(f"video (B, C, T, H, W) = {tuple(video.shape)} must have T divisible by "
                             f"{c.tubelet_size} and H, W by {c.patch_size}")
        x = self.patch_embed(video)  # (B, N, D)
        grid = (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)
        cos, sin = rope_tables(c.head_dim, *grid_positions(*grid, device=x.device), dtype=x.dtype)  # (N, hd)
        for block in self.blocks:
            x, _ = block(x, cos, sin)
        return self.norm(x)  # (B, N, D)
