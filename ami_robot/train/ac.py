"""Action-conditioned predictor training, as V-JEPA 2-AC: teacher forcing plus a rollout loss.

Targets come from the frozen encoder. Every frame of the dataset is encoded once (one frame
repeated into one tubelet, as planning encodes images), layer-normalised, and kept as float16;
training then never touches the encoder. Losses (both L1, summed):

    teacher forcing  predict frames 1..T from true frames 0..T-1 in one block-causal pass
    rollout          from frame 0 alone, feed each prediction back for `rollout_steps` steps
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ami_robot.models.encoder import VisionTransformer, split_views
from ami_robot.models.predictor import ACPredictor
from ami_robot.train.jepa import video_from_frames


@torch.no_grad()
def encode_frames(encoder: VisionTransformer, frames: torch.Tensor, batch_size: int = 256,
                  progress=None, views: int = 1) -> torch.Tensor:
    """uint8 frames (F, H, W, 3) of `views` stacked views -> layer-normalised latents (F, V*N, D)
    float16, in batches (each view encoded alone, tokens view-major, as WorldModel.encode)."""
    device = next(encoder.parameters()).device
    out = []
    for i in range(0, len(frames), batch_size):
        chunk = split_views(frames[i : i + batch_size], views).to(device)  # (b*V, S, S, 3)
        video = video_from_frames(chunk[:, None].expand(-1, encoder.config.tubelet_size, -1, -1, -1))
        z = encoder(video)  # (b*V, N, D)
        z = z.reshape(-1, views * z.shape[1], z.shape[2])  # (b, V*N, D)
        out.append(F.layer_norm(z, z.shape[-1:]).half().cpu())
        if progress is not None:
            progress.update(len(z))
    return torch.cat(out)


def teacher_forcing_loss(predictor: ACPredictor, z: torch.Tensor, actions: torch.Tensor,
                         states: torch.Tensor) -> torch.Tensor:
    """z (B, T+1, N, D), actions (B, T, 7), states (B, T+1, 7): L1 of one block-causal pass."""
    pred = predictor(z[:, :-1], actions, states[:, :-1])  # (B, T, N, D)
    pred = F.layer_norm(pred, pred.shape[-1:])
    return (pred - z[:, 1:]).abs().mean()


def rollout_loss(predictor: ACPredictor, z: torch.Tensor, actions: torch.Tensor, states: torch.Tensor,
                 steps: int) -> torch.Tensor:
    """From the true frame 0 only, predict `steps` frames, each fed back; L1 over all of them."""
    context = z[:, :1]  # (B, 1, N, D)
    losses = []
    for k in range(steps):
        pred = predictor(context, actions[:, : k + 1], states[:, : k + 1])[:, -1:]  # (B, 1, N, D)
        pred = F.layer_norm(pred, pred.shape[-1:])
        losses.append((pred - z[:, k + 1 : k + 2]).abs().mean())
        context = torch.cat([context, pred], dim=1)
    return torch.stack(losses).mean()
