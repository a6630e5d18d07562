"""Encoder pretraining with the JEPA objective (V-JEPA): predict masked patches in latent space.

A context encoder sees the patches outside a 3D multi-block mask; a narrow predictor, given the
context tokens and mask tokens at the masked positions, predicts what an EMA target encoder says
about those positions (layer-normalised), under an L1 loss. The target encoder is what we ship.

A short JEPA run on our scenes learns to predict the static table and little else: masked
prediction alone, at the budget of a CPU session, leaves the encoder no better than a random one
(DESIGN.md, lesson 2). Our robot video comes with actions, so the trainable part may also hold an
action-conditioned head (an AC predictor) that predicts the target encoder's features of the next
frame from the context encoder's features of this one, the action and the state: the JEPA
objective in time, which only an encoder that sees the arm and the objects can satisfy. A
variance/covariance term (VICReg-style, as PLDM and LeWM use) is available but off by default:
on token-pooled features of near-identical frames it forces the encoder to amplify pixel noise.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ami_robot.models.encoder import VisionTransformer
from ami_robot.models.layers import Block
from ami_robot.models.predictor import ACPredictor
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
    """Context encoder + mask predictor (+ an optional action-conditioned head), the trainable part.

    The EMA target encoder lives beside it.
    """

    def __init__(self, encoder: VisionTransformer, predictor: MaskPredictor,
                 dynamics: ACPredictor | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.dynamics = dynamics

    def forward(self, video: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                still: torch.Tensor | None = None, actions: torch.Tensor | None = None,
                states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Context features (B, nc, D), predictions at the targets (B, nt, D) and, with the
        dynamics head, the next frame's features (B, N, D) predicted from `still` (B, 3, t, H, W),
        the frame's tubelet, and its action and state (B, 7) each."""
        c = self.encoder.config
        _, _, t, h, w = video.shape
        grid = (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)
        z = encode_visible(self.encoder, video, context_idx)
        masked = self.predictor(z, context_idx, target_idx, grid)
        if self.dynamics is None or still is None:
            return z, masked, None
        now = self.encoder(still)  # (B, N, D): the whole frame, as planning encodes it
        now = F.layer_norm(now, now.shape[-1:])
        following = self.dynamics(now[:, None], actions[:, None], states[:, None])[:, 0]  # (B, N, D)
        return z, masked, following


def jepa_loss(
    prediction: torch.Tensor, target_features: torch.Tensor, target_idx: torch.Tensor
) -> torch.Tensor:
    """L1 between predictions (B, nt, D) and the layer-normalised target features at target_idx."""
    h = F.layer_norm(target_features, target_features.shape[-1:])  # (B, N, D)
    return (prediction - _gather_tokens(h, target_idx)).abs().mean()


def next_frame_loss(prediction: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """L1 between the predicted (B, N, D) and the target encoder's next-frame features, both
    layer-normalised as the AC predictor's targets are."""
    h = F.layer_norm(target_features, target_features.shape[-1:])
    return (F.layer_norm(prediction, prediction.shape[-1:]) - h).abs().mean()
