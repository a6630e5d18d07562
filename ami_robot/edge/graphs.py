"""The two networks as the graphs `ami-robot export` traces: fixed shapes but the batch, RoPE baked in.

The torch models build their RoPE tables on every call from the token positions; an exported
graph would then carry the float64 table arithmetic. Here the tables are computed once and held
as buffers, which the exporter writes as constants: the encoder's for its one tubelet, the
predictor's for every time step up to `max_steps` (a step picks its rows by index).

The predictor graph is ONE autoregressive step with the keys and values of the earlier steps
passed in and returned extended: the same computation as the torch model's KV cache, so a
rollout of any horizon costs one step per imagined frame under onnxruntime too. Both graphs end
with the affine-free layer norm the world model applies, so their outputs compare to
WorldModel.encode and to the rollout's predictions directly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ami_robot.models import ACPredictor, VisionTransformer, rope_tables
from ami_robot.models.rope import grid_positions
from ami_robot.world_model import normalise

MAX_STEPS = 32  # the reference sizes its predictor's mask for 32 time steps; so do our tables


class EncoderGraph(nn.Module):
    """Normalised images (B, 3, S, S) -> normalised latents (B, n, D), one tubelet per image."""

    def __init__(self, encoder: VisionTransformer) -> None:
        super().__init__()
        c = encoder.config
        self.encoder, self.tubelet = encoder, c.tubelet_size
        cos, sin = rope_tables(c.head_dim, *grid_positions(1, c.grid, c.grid))  # (n, hd)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # The image repeated over the tubelet inside the graph: callers feed half the bytes.
        clip = image[:, :, None].expand(-1, -1, self.tubelet, -1, -1)  # (B, 3, t, S, S)
        x = self.encoder.patch_embed(clip)  # (B, n, D)
        for block in self.encoder.blocks:
            x, _ = block(x, self.cos, self.sin)
        return normalise(self.encoder.norm(x))  # (B, n, D)


def step_tables(predictor: ACPredictor, max_steps: int = MAX_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (max_steps, cond + N, hd): the predictor's own tables for each step, one at a time."""
    rows = [predictor._rope(t, 1, torch.device("cpu"), torch.float32) for t in range(max_steps)]
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


class PredictorStepGraph(nn.Module):
    """One imagined step for B candidate rows.

    Inputs: z (G, N, D) the step's frame tokens, rows (B,) int64 the z row each candidate reads
    (the context frame is shared by an episode's candidates; later steps pass arange(B)), actions
    and states (B, 7), step () int64 the time index, past_keys and past_values (depth, B, h, L, hd)
    of the steps before (L = 0 at the first). Outputs: the normalised prediction of the next frame
    (B, N, D), and the keys and values extended by this step (depth, B, h, L + cond + N, hd).
    """

    def __init__(self, predictor: ACPredictor, max_steps: int = MAX_STEPS) -> None:
        super().__init__()
        c = predictor.config
        if c.use_extrinsics:
            raise ValueError("export takes predictors without extrinsics (the world model drives none)")
        self.predictor = predictor
        cos, sin = step_tables(predictor, max_steps)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, z: torch.Tensor, rows: torch.Tensor, actions: torch.Tensor, states: torch.Tensor,
                step: torch.Tensor, past_keys: torch.Tensor,
                past_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.predictor
        patches = torch.index_select(p.predictor_embed(z), 0, rows)  # (B, N, d): embedded once per row of z
        cond = [p.action_encoder(actions)[:, None], p.state_encoder(states)[:, None]]  # (B, 1, d) each
        x = torch.cat([*cond, patches], dim=1)  # (B, cond + N, d): [action, state, patches] as in the model
        index = step.reshape(1)
        cos = torch.index_select(self.cos, 0, index)[0]  # (cond + N, hd)
        sin = torch.index_select(self.sin, 0, index)[0]
        keys, values = [], []
        for i, block in enumerate(p.predictor_blocks):
            x, (k, v) = block(x, cos, sin, None, (past_keys[i], past_values[i]))
            keys.append(k)
            values.append(v)
        x = x[:, len(cond):]  # (B, N, d): patch tokens only
        out = p.predictor_proj(p.predictor_norm(x))  # (B, N, D)
        if p.config.residual:  # the change from this step's own frame tokens
            out = out + torch.index_select(z, 0, rows)
        z_next = normalise(out)
        return z_next, torch.stack(keys), torch.stack(values)
