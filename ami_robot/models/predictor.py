"""The V-JEPA 2-AC predictor: block-causal over time steps of [action, state, patches] tokens.

Step k holds the tokens [action_k, state_k, (extrinsics_k), patch tokens of frame k]; every
token of step k attends to all tokens of steps 0..k. Patch tokens get the 3D rotation, action
and state tokens only the temporal one (position = step index). Only patch tokens come out,
and the output at step k predicts frame k+1.

A frame may show several camera views (ours: exterior and wrist; the released model: one). Their
patch tokens follow each other view-major and are placed as if the views were stacked top to
bottom: view v's row r sits at height v * grid + r. No parameter depends on the number of views.

Because attention is block-causal, the keys and values of earlier steps never change: a
`KVCache` keeps them so that a rollout computes each step's tokens once, and a cache prefilled
on context steps can be shared, without copying, by many candidate action sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .layers import KV, Block, validate_heads
from .rope import rope_tables


@dataclass(frozen=True)
class PredictorConfig:
    img_size: int = 64  # the encoder's crop size (pixels); sets the patch grid
    patch_size: int = 8  # the encoder's patch size
    tubelet_size: int = 2  # the encoder's tubelet size (one tubelet = one time step)
    input_dim: int = 192  # encoder embed dim: the predictor's input and output feature dim
    dim: int = 192  # predictor width
    depth: int = 4
    heads: int = 3
    mlp_dim: int = 768
    action_dim: int = 7  # action and state size; extrinsics have action_dim - 1
    use_extrinsics: bool = False  # the released model has the extrinsics encoder but does not use it
    views: int = 1  # camera views per frame, each a grid x grid of patch tokens
    # Ours, not the released model's: predict the change from the step's own frame tokens (output =
    # z_k + proj(...), proj zero at init), so an untrained predictor starts at "nothing moves"
    # instead of having to learn the identity through its dim-wide bottleneck. No new parameters.
    residual: bool = False
    eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("img_size", "patch_size", "tubelet_size", "input_dim", "dim", "depth", "heads",
                     "mlp_dim", "action_dim", "views"):
            if getattr(self, name) < 1:
                raise ValueError(f"PredictorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.action_dim < 2:
            raise ValueError(f"PredictorConfig.action_dim must be >= 2, got {self.action_dim}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        validate_heads("PredictorConfig", self.dim, self.heads)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def patch_tokens(self) -> int:
        """Patch tokens per step: every view's grid x grid."""
        return self.views * self.grid * self.grid

    @property
    def cond_tokens(self) -> int:
        """Action and state (and extrinsics) tokens per step."""
        return 3 if self.use_extrinsics else 2


PREDICTOR_CONFIGS: dict[str, PredictorConfig] = {
    # The released V-JEPA 2-AC predictor on ViT-g at 256 px (~305M parameters).
    "vjepa2_ac_vit_giant": PredictorConfig(img_size=256, patch_size=16, input_dim=1408, dim=1024, depth=24,
                                           heads=16, mlp_dim=4096),
    # Ours, on the 64 px encoders: 64 patch tokens + 2 per step. A CEM step costs about
    # 2 * params * 66 * samples * iterations * horizon FLOPs (~58 MFLOP per candidate-step for
    # "tiny", 0.45M params): 300 x 3 x horizon 1 = 52 GFLOP, ~0.5 s at the ~110 GFLOP/s fp32 matmul
    # peak of 2 CPU cores and ~1 s at the ~50% of it that the small matmuls reach. "small" (1.9M,
    # the 192 x 4 first asked for) costs 4x that. Measured: benchmarks/bench_models.py.
    "micro": PredictorConfig(input_dim=96, dim=96, depth=2, heads=2, mlp_dim=384),  # tests
    "tiny": PredictorConfig(input_dim=192, dim=128, depth=2, heads=2, mlp_dim=512),  # head dim 64
    # "tiny" twice as deep (0.84M): depth 2 barely beat "nothing moves" (DESIGN.md, lesson 2). With two
    # views (130 tokens per step) a candidate-step costs 2 * 0.84M * 130 = 0.22 GFLOP: a gradient plan
    # of 8 x 20 (x3 for the backward pass) ~105 GFLOP, ~1 s at the ~100 GFLOP/s of 2 cores.
    "tiny4": PredictorConfig(input_dim=192, dim=128, depth=4, heads=2, mlp_dim=512),
    "small": PredictorConfig(input_dim=192, dim=192, depth=4, heads=3, mlp_dim=768),
    "base": PredictorConfig(input_dim=192, dim=256, depth=6, heads=4, mlp_dim=1024),
}


@dataclass
class KVCache:
    """Rotated keys and values, per block, of the steps the predictor has seen.

    `prefix`, if set, is a cache over G rows shared by this cache's B = G * S rows (S consecutive
    rows per group: episode-major); it is attended by reference, never copied or extended.
    """

    layers: list[KV | None]
    steps: int = 0  # steps held in `layers`
    prefix: KVCache | None = field(default=None)

    @classmethod
    def empty(cls, depth: int, prefix: KVCache | None = None) -> KVCache:
        if prefix is not None and prefix.prefix is not None:
            raise ValueError("a prefix cache cannot itself have a prefix")
        return cls([None] * depth, 0, prefix)

    def episodes(self, start: int, stop: int) -> KVCache:
        """This cache's rows start..stop-1 (views, not copies), for planning a few episodes at a time."""
        if self.prefix is not None:
            raise ValueError("only a prefix cache (one without its own prefix) is cut by episodes")
        layers = [None if kv is None else tuple(t[start:stop] for t in kv) for kv in self.layers]
        return KVCache(layers, self.steps)

    @property
    def offset(self) -> int:
        """Time index of the next step."""
        return self.steps + (self.prefix.steps if self.prefix is not None else 0)

    @property
    def tokens(self) -> int:
        """Tokens held in `layers` (not counting the prefix)."""
        first = self.layers[0] if self.layers else None
        return 0 if first is None else first[0].shape[2]


def block_causal_mask(steps: int, tokens_per_step: int, past: int = 0,
                      device: torch.device | None = None) -> torch.Tensor:
    """(steps*n, past + steps*n) bool, True = attend: all past tokens, and new steps 0..k from step k."""
    step = torch.arange(steps, device=device).repeat_interleave(tokens_per_step)  # (steps*n,)
    new = step[None, :] <= step[:, None]  # (steps*n, steps*n)
    return torch.cat([new.new_ones(new.shape[0], past), new], dim=1)


class ACPredictor(nn.Module):
    """V-JEPA 2-AC predictor: (frames, actions, states) per step -> next-frame patch tokens."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.predictor_embed = nn.Linear(c.input_dim, c.dim, bias=True)
        self.action_encoder = nn.Linear(c.action_dim, c.dim, bias=True)
        self.state_encoder = nn.Linear(c.action_dim, c.dim, bias=True)
        self.extrinsics_encoder = nn.Linear(c.action_dim - 1, c.dim, bias=True)  # present even when unused
        if not c.use_extrinsics:
            # Kept for the released names only; frozen so that no trainer (nor DDP, which refuses
            # parameters without gradients) ever waits for a gradient it cannot get.
            self.extrinsics_encoder.requires_grad_(False)
        self.predictor_blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_dim, c.eps) for _ in range(c.depth))
        self.predictor_norm = nn.LayerNorm(c.dim, eps=c.eps)
        self.predictor_proj = nn.Linear(c.dim, c.input_dim, bias=True)
        if c.residual:
            nn.init.zeros_(self.predictor_proj.weight)
            nn.init.zeros_(self.predictor_proj.bias)

    def _rope(self, t0: int, steps: int, device: torch.device,
              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (steps * (cond + N), hd) for steps t0.. laid out [cond tokens, patches] per step."""
        c = self.config
        g = c.grid
        per_step = c.cond_tokens + c.patch_tokens
        nan = torch.full((c.cond_tokens,), float("nan"), device=device)
        rows = torch.arange(c.views * g, device=device).repeat_interleave(g).float()  # (N,): views stacked
        cols = torch.arange(g, device=device).repeat(c.views * g).float()  # (N,)
        h = torch.cat([nan, rows]).repeat(steps)  # (steps * per_step,); NaN = temporal rotation only
        w = torch.cat([nan, cols]).repeat(steps)
        t = torch.arange(t0, t0 + steps, device=device).repeat_interleave(per_step).float()
        # The reference rescales spatial positions by grid_size / H; we run at the configured grid,
        # where that factor is 1.
        return rope_tables(c.head_dim, t, h, w, dtype=dtype)

    def forward(self, z: torch.Tensor, actions: torch.Tensor, states: torch.Tensor,
                extrinsics: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """Predict the next frame of each of T steps -> (B, T, N, input_dim).

        z (B or G, T, N, input_dim): the steps' frame tokens (G rows are repeated S = B // G times,
        episode-major); actions and states (B, T, action_dim); extrinsics (B, T, action_dim - 1)
        when the config uses them. With a cache, the steps continue after the cached ones
        (time index cache.offset onwards) and their keys and values are appended to it.
        """
        c = self.config
        b, steps = actions.shape[:2]
        n = z.shape[2]
        if n != c.patch_tokens:
            raise ValueError(f"z has {n} tokens per step; this predictor expects {c.views} view(s) x "
                             f"{c.grid}^2 = {c.patch_tokens}")
        if states.shape[:2] != (b, steps) or z.shape[1] != steps or b % z.shape[0]:
            raise ValueError(f"shapes disagree: z {tuple(z.shape)}, actions {tuple(actions.shape)}, "
                             f"states {tuple(states.shape)}")
        patches = self.predictor_embed(z)  # (G, T, N, d), embedded once per group
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # (B, T, d) each
        if c.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor uses extrinsics: pass extrinsics (B, T, action_dim - 1)")
            cond.append(self.extrinsics_encoder(extrinsics))
        per_step = len(cond) + n
        x = patches.new_empty(b, steps, per_step, c.dim)  # (B, T, cond + N, d): [action, state, patches]
        for i, tok in enumerate(cond):
            x[:, :, i] = tok
        g = patches.shape[0]
        x.view(g, b // g, steps, per_step, c.dim)[:, :, :, len(cond):] = patches[:, None]  # to the S rows
        x = x.flatten(1, 2)  # (B, T * (cond + N), d)

        t0 = cache.offset if cache is not None else 0
        past = cache.tokens if cache is not None else 0
        cos, sin = self._rope(t0, steps, x.device, x.dtype)
        mask = block_causal_mask(steps, per_step, past, x.device) if steps > 1 else None  # one step: no mask
        prefix_layers = cache.prefix.layers if cache is not None and cache.prefix is not None else None
        for i, block in enumerate(self.predictor_blocks):
            old = cache.layers[i] if cache is not None else None
            prefix = prefix_layers[i] if prefix_layers is not None else None
            x, kv = block(x, cos, sin, mask, old, prefix)
            if cache is not None:
                cache.layers[i] = kv  # the rows' keys and values, past and new
        if cache is not None:
            cache.steps += steps

        x = x.view(b, steps, per_step, -1)[:, :, c.cond_tokens:]  # (B, T, N, d): patch tokens only
        out = self.predictor_proj(self.predictor_norm(x))  # (B, T, N, input_dim)
        if c.residual:  # each of an episode's S rows adds its group's frame tokens
            out = (out.view(g, b // g, *out.shape[1:]) + z[:, None]).view(out.shape)
        return out
