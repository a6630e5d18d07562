"""The transformer block both V-JEPA 2 models share: pre-norm, fused qkv, RoPE, GELU MLP.

Parameter names follow the reference release (`norm1`, `attn.qkv`, `attn.proj`, `norm2`,
`mlp.fc1`, `mlp.fc2`) so its state dicts load without a key map. Attention can extend keys and
values from earlier calls (a KV cache) and a *shared prefix*: keys and values of G groups
that the B = G * S rows of the batch share, S rows per group, attended without copying them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rope import apply_rope

KV = tuple[torch.Tensor, torch.Tensor]  # keys, values (B, heads, L, head_dim)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           prefix: KV | None = None) -> torch.Tensor:
    """Softmax attention of q (B, h, n, hd) over [prefix keys, k] -> (B, h, n, hd).

    k, v (B, h, m, hd) belong to each row; mask (n, m) bool (True = attend) applies to them only.
    prefix (G, h, L, hd) is attended by every query of the S = B // G rows of its group.
    Scale 1/sqrt(hd), as released.
    """
    if prefix is None or prefix[0].shape[2] == 0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    pk, pv = prefix
    b, h, n, hd = q.shape
    g, length = pk.shape[0], pk.shape[2]
    if g == b:  # one row per group: nothing to share, plain concatenation is cheapest
        if mask is not None:
            mask = torch.cat([mask.new_ones(n, length), mask], dim=1)
        return F.scaled_dot_product_attention(q, torch.cat([pk, k], 2), torch.cat([pv, v], 2), attn_mask=mask)
    s = b // g
    scale = hd**-0.5
    # The S rows of a group become extra query rows against the group's keys: one matmul per
    # (group, head), and the prefix is read once instead of being copied S times.
    qg = q.view(g, s, h, n, hd).transpose(1, 2).reshape(g, h, s * n, hd)  # (G, h, S*n, hd)
    score_pre = (qg @ pk.transpose(-2, -1)) * scale  # (G, h, S*n, L)
    score_pre = score_pre.view(g, h, s, n, length).transpose(1, 2).reshape(b, h, n, length)  # (B, h, n, L)
    score_own = (q @ k.transpose(-2, -1)) * scale  # (B, h, n, m)
    if mask is not None:
        score_own = score_own.masked_fill(~mask, float("-inf"))
    p = torch.cat([score_pre, score_own], dim=-1).softmax(dim=-1)  # (B, h, n, L+m)
    p_pre, p_own = p.split([length, k.shape[2]], dim=-1)
    p_pre = p_pre.reshape(g, s, h, n, length).transpose(1, 2).reshape(g, h, s * n, length)  # (G, h, S*n, L)
    out_pre = (p_pre @ pv).view(g, h, s, n, hd).transpose(1, 2).reshape(b, h, n, hd)  # (B, h, n, hd)
    return out_pre + p_own @ v  # (B, h, n, hd)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv linear ([q | k | v]) and RoPE on q and k."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None = None, past: KV | None = None,
                prefix: KV | None = None) -> tuple[torch.Tensor, KV]:
        """x (B, n, D) -> (B, n, D), and the rows' rotated keys and values, past then new (B, h, L+n, hd).

        past: keys/values of earlier tokens of the same rows; prefix: shared by groups of rows.
        """
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, d // self.heads)  # (B, n, 3, h, hd)
        # tables (n, hd), or (B, n, hd) when each row has its own positions (masked JEPA training)
        tables = cos[..., None, None, :], sin[..., None, None, :]
        # q and k in one pass; made contiguous first, as flip on the strided slice runs ~2x slower
        qk = apply_rope(qkv[:, :, :2].contiguous(), *tables)  # (B, n, 2, h, hd)
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        k_all, v_all = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        y = attend(q, k_all, v_all, mask, prefix)  # (B, h, n, hd)
        y = y.transpose(1, 2).reshape(b, n, d)  # (B, n, D)
        return self.proj(y), (k_all, v_all)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=True)
        self.fc2 = nn.Linear(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None = None, past: KV | None = None,
                prefix: KV | None = None) -> tuple[torch.Tensor, KV]:
        a, kv = self.attn(self.norm1(x), cos, sin, mask, past, prefix)
        x = x + a
        return x + self.mlp(self.norm2(x)), kv  # (B, n, D)


def validate_heads(name: str, dim: int, heads: int) -> None:
    """Raise unless dim splits into heads of an even size with room for three RoPE segments."""
    if dim % heads:
        raise ValueError(f"{name}: dim {dim} is not divisible by heads {heads}")
    head_dim = dim // heads
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"{name}: head dim {head_dim} must be even and >= 6 (three RoPE segments)")
