"""Encoder pretraining with the JEPA objective (V-JEPA): predict masked patches in latent space.

A context encoder sees the patches outside a 3D multi-block mask; a narrow predictor, given the
context tokens and mask tokens at the masked positions, predicts what an EMA target encoder says
about those positions (layer-normalised), under an L1 loss. The target encoder is what we ship.

A short JEPA run can drift toward collapse and end up worse than a random encoder (DESIGN.md,
lesson 2), so two things are built in: a variance/covariance term on the context features
(VICReg-style, as PLDM and LeWM use) and the target features' spread in the metrics log.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ami_robot.models.encoder import VisionTransformer
from ami_robot.models.layers import Block
from ami_robot.models.rope import grid_positions, rope_tables

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def video_from_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, T, H, W, 3) -> ImageNet-normalised video (B, 3, T, H, W), float32."""
    x = frames.permute(0, 4, 1, 2, 3).float().div_(255.0)  # (B, 3, T, H, W)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def _grid_tables(head_dim: int, grid: tuple[int, int, int], device: torch.device, dtype: torch.dtype):
    return rope_tables(head_dim, *grid_positions(*grid, device=device), dtype=dtype)  # (N, hd) each


def _gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), idx (B, n) -> (B, n, D)."""
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))


def encode_visible(encoder: VisionTransformer, video: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Run the encoder on the kept tokens only, each at its own 3D RoPE position: (B, n, D)."""
    c = encoder.config
    _, _, t, h, w = video.shape
    grid = (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)
    x = _gather_tokens(encoder.patch_embed(video), keep)  # (B, n, D)
    cos, sin = _grid_tables(c.head_dim, grid, x.device, x.dtype)
    cos, sin = cos[keep], sin[keep]  # (B, n, hd): one table per sample
    for block in encoder.blocks:
        x, _ = block(x, cos, sin)
    return encoder.norm(x)


class MaskPredictor(nn.Module):
    """Narrow ViT: context tokens + learned mask tokens at target positions -> target features."""

    def __init__(self, input_dim: int, dim: int, depth: int, heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Linear(input_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim, eps) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.proj = nn.Linear(dim, input_dim)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                grid: tuple[int, int, int]) -> torch.Tensor:
        """context (B, nc, Din) at context_idx (B, nc); predictions (B, nt, Din) at target_idx (B, nt)."""
        b, nt = target_idx.shape
        x = torch.cat([self.embed(context), self.mask_token.expand(b, nt, -1)], dim=1)  # (B, nc+nt, d)
        idx = torch.cat([context_idx, target_idx], dim=1)  # (B, nc+nt)
        cos, sin = _grid_tables(x.shape[-1] // self.heads, grid, x.device, x.dtype)
        cos, sin = cos[idx], sin[idx]  # (B, nc+nt, hd)
        for block in self.blocks:
            x, _ = block(x, cos, sin)
        return self.proj(self.norm(x[:, -nt:]))  # (B, nt, Din)


def variance_covariance_loss(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg terms on features pooled per sample (B, D): hinge on each dim's std, off-diagonal cov."""
    pooled = z.mean(dim=1)  # (B, D)
    pooled = pooled - pooled.mean(0)
    std = torch.sqrt(pooled.var(0) + 1e-4)
    var_loss = F.relu(1.0 - std).mean()
    cov = pooled.T @ pooled / max(1, len(pooled) - 1)  # (D, D)
    off_diag = cov - torch.diag(torch.diag(cov))
    cov_loss = off_diag.pow(2).sum() / z.shape[-1]
    return var_loss, cov_loss


class JEPA(nn.Module):
    """Context encoder + mask predictor, the trainable part (the EMA target lives beside it)."""

    def __init__(self, encoder: VisionTransformer, predictor: MaskPredictor) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(self, video: torch.Tensor, context_idx: torch.Tensor,
                target_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Context features (B, nc, D) and predictions at the targets (B, nt, D)."""
        c = self.encoder.config
        _, _, t, h, w = video.shape
        grid = (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)
        z = encode_visible(self.encoder, video, context_idx)
        return z, self.predictor(z, context_idx, target_idx, grid)


def jepa_loss(
    prediction: torch.Tensor, target_features: torch.Tensor, target_idx: torch.Tensor
) -> torch.Tensor:
    """L1 between predictions (B, nt, D) and the layer-normalised target features at target_idx."""
    h = F.layer_norm(target_features, target_features.shape[-1:])  # (B, N, D)
    return (prediction - _gather_tokens(h, target_idx)).abs().mean()
