"""3D rotary position embeddings as V-JEPA 2 releases them, tiled-frequency quirk included.

Each head's dims are cut into three segments of `2 * ((head_dim // 3) // 2)` dims for time,
height and width (in that order); dims left over at the end are not rotated. Within a segment
of d dims, dims are rotated in adjacent pairs (x0, x1), (x2, x3), ... but the cos/sin tables are
the d/2 frequencies *tiled* twice, [w0 .. w_{d/2-1}, w0 .. w_{d/2-1}], so dim j uses frequency
j mod d/2. That is not a true rotation, and it is what the released weights were trained with.

We build one (n, head_dim) cos table and one sin table per token list, with cos = 1 and sin = 0
on dims that a token does not rotate, so one fused `x * cos + pair_swap(x) * sin` applies the
three segments at once (pairs never straddle a segment: every segment is even and starts even).
"""

from __future__ import annotations

import torch

ROPE_BASE = 10000.0


def segment_dim(head_dim: int) -> int:
    """Dims per rotated segment (time, height or width): 20 for head dim 64, 26 for 80."""
    return 2 * ((head_dim // 3) // 2)


def _segment_angles(pos: torch.Tensor, d: int) -> torch.Tensor:
    """Angles (n, d) for positions (n,) in one segment of d dims, with the tiled frequencies."""
    omega = torch.arange(d // 2, dtype=torch.float64, device=pos.device) / (d / 2.0)
    omega = 1.0 / ROPE_BASE**omega  # (d/2,)
    freq = pos.double()[:, None] * omega[None, :]  # (n, d/2)
    return freq.repeat(1, 2)  # (n, d): tiled [w0..w_{d/2-1}, w0..w_{d/2-1}], the released quirk


def rope_tables(
    head_dim: int,
    t: torch.Tensor,
    h: torch.Tensor | None,
    w: torch.Tensor | None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (n, head_dim) for n tokens at positions t, h, w (each (n,)).

    h and w may be None (or hold NaN rows) for tokens that get only the temporal rotation
    (the predictor's action and state tokens): their height and width dims stay unrotated.
    """
    d = segment_dim(head_dim)
    n = t.shape[0]
    angles = torch.zeros(n, head_dim, dtype=torch.float64, device=t.device)  # (n, hd)
    rotated = torch.zeros(n, head_dim, dtype=torch.bool, device=t.device)  # (n, hd)
    angles[:, 0:d] = _segment_angles(t, d)
    rotated[:, 0:d] = True
    for i, pos in enumerate((h, w), start=1):
        if pos is None:
            continue
        spatial = ~torch.isnan(pos)  # (n,) tokens that carry this spatial coordinate
        angles[:, i * d:(i + 1) * d] = _segment_angles(torch.nan_to_num(pos), d)
        rotated[:, i * d:(i + 1) * d] = spatial[:, None]
    cos = torch.where(rotated, angles.cos(), torch.ones_like(angles))
    sin = torch.where(rotated, angles.sin(), torch.zeros_like(angles))
    return cos.to(dtype), sin.to(dtype)


def grid_positions(steps: int, height: int, width: int, t0: int = 0,
                   device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
    """Integer positions (t, h, w), each (steps * height * width,), flattened time-major."""
    t = torch.arange(t0, t0 + steps, device=device)
    r = torch.arange(height, device=device)
    c = torch.arange(width, device=device)
    tt, rr, cc = torch.meshgrid(t, r, c, indexing="ij")  # (T, H, W) each
    return tt.flatten().float(), rr.flatten().float(), cc.flatten().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys x (..., hd) with tables that broadcast to it: x cos + swap(x) sin.

    swap maps each adjacent pair (x0, x1) to (-x1, x0). The sign is folded into the (small)
    sin table so that the big tensor takes three passes: flip, multiply, multiply-add.
    """
    sign = torch.tensor([-1.0, 1.0], dtype=sin.dtype, device=sin.device).repeat(sin.shape[-1] // 2)
    flipped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # (..., hd): pairs (x1, x0)
    return torch.addcmul(x * cos, flipped, sin * sign)
