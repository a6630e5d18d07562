"""A literal, slow re-statement of shared/VJEPA2_FACTS.md, to check the fused implementation against.

It follows the facts step by step, the way the reference release is laid out: RoPE applied
segment by segment (time, height, width, leftover), the AC predictor's action and state tokens
projected and rotated separately (temporal segment only) and merged back before attention, and
an explicit block-causal mask. It reads the weights of our modules, nothing else.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The released rotation of one segment: adjacent pairs, tiled frequency table. x (..., n, d)."""
    d = x.shape[-1]
    omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))  # (d/2,)
    freq = pos.double()[:, None] * omega[None]  # (n, d/2)
    sin, cos = freq.sin().repeat(1, 2).float(), freq.cos().repeat(1, 2).float()  # tiled, not interleaved
    y1, y2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    y = torch.stack((-y2, y1), dim=-1).flatten(-2)
    return x * cos + y * sin


def rotate_3d(x: torch.Tensor, t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    hd = x.shape[-1]
    d = 2 * ((hd // 3) // 2)
    parts = [rotate(x[..., 0:d], t), rotate(x[..., d:2 * d], h), rotate(x[..., 2 * d:3 * d], w)]
    return torch.cat(parts + [x[..., 3 * d:]], dim=-1)


def rotate_time_only(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    d = 2 * ((x.shape[-1] // 3) // 2)
    return torch.cat([rotate(x[..., 0:d], t), x[..., d:]], dim=-1)


def split_qkv(attn, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    b, n, c = x.shape
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias).unflatten(-1, (3, attn.heads, -1))
    return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # q, k, v (B, h, n, hd)


def mlp(block, x: torch.Tensor) -> torch.Tensor:
    return block.mlp.fc2(F.gelu(block.mlp.fc1(x)))


def encoder_forward(model, video: torch.Tensor) -> torch.Tensor:
    """video (B, C, T, H, W) -> (B, N, D) following the facts."""
    c = model.config
    w = model.patch_embed.proj.weight
    x = F.conv3d(video, w, model.patch_embed.proj.bias, stride=w.shape[2:])  # (B, D, T', H', W')
    gt, gh, gw = x.shape[2:]
    x = x.flatten(2).transpose(1, 2)  # time-major (t, h, w)
    ids = torch.arange(gt * gh * gw)
    t, h, wpos = ids // (gh * gw), (ids % (gh * gw)) // gw, ids % gw
    for blk in model.blocks:
        y = F.layer_norm(x, (c.dim,), blk.norm1.weight, blk.norm1.bias, c.eps)
        q, k, v = split_qkv(blk.attn, y)
        q, k = rotate_3d(q, t, h, wpos), rotate_3d(k, t, h, wpos)
        att = (q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)).softmax(-1) @ v
        x = x + blk.attn.proj(att.transpose(1, 2).flatten(2))
        x = x + mlp(blk, F.layer_norm(x, (c.dim,), blk.norm2.weight, blk.norm2.bias, c.eps))
    return F.layer_norm(x, (c.dim,), model.norm.weight, model.norm.bias, c.eps)


def predictor_forward(model, z: torch.Tensor, actions: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """z (B, T*N, D_in), actions and states (B, T, 7) -> (B, T*N, D_in), as the reference lays it out."""
    c = model.config
    b, steps = actions.shape[:2]
    g = c.grid
    n = g * g
    x = model.predictor_embed(z).view(b, steps, n, -1)
    a, s = model.action_encoder(actions)[:, :, None], model.state_encoder(states)[:, :, None]
    x = torch.cat([a, s, x], dim=2).flatten(1, 2)  # (B, T*(2+N), d)
    per = n + 2
    step_of = torch.arange(steps * per) // per
    mask = step_of[None, :] <= step_of[:, None]  # block-causal
    ids = torch.arange(steps * n)
    t, h, w = ids // n, (ids % n) // g, ids % g
    for blk in model.predictor_blocks:
        y = F.layer_norm(x, (c.dim,), blk.norm1.weight, blk.norm1.bias, c.eps).view(b, steps, per, -1)
        qs, ks, vs = [], [], []
        for i in range(2):  # action, then state tokens: temporal rotation only, position = step
            q, k, v = split_qkv(blk.attn, y[:, :, i])
            qs.append(rotate_time_only(q, torch.arange(steps)))
            ks.append(rotate_time_only(k, torch.arange(steps)))
            vs.append(v)
        q, k, v = split_qkv(blk.attn, y[:, :, 2:].flatten(1, 2))
        q, k = rotate_3d(q, t, h, w), rotate_3d(k, t, h, w)

        def merge(cond, patches):
            hd = patches.shape[-1]
            cond = torch.stack(cond, dim=3)  # (B, h, T, 2, hd)
            return torch.cat([cond, patches.view(b, -1, steps, n, hd)], dim=3).flatten(2, 3)

        q, k, v = merge(qs, q), merge(ks, k), merge(vs, v)
        scores = (q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)).masked_fill(~mask, float("-inf"))
        x = x + blk.attn.proj((scores.softmax(-1) @ v).transpose(1, 2).flatten(2))
        x = x + mlp(blk, F.layer_norm(x, (c.dim,), blk.norm2.weight, blk.norm2.bias, c.eps))
    x = x.view(b, steps, per, -1)[:, :, 2:].flatten(1, 2)
    return model.predictor_proj(model.predictor_norm(x))
