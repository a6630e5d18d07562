"""model.dtype=bfloat16: the shipped model's energies stay close to float32's and rank candidates alike;
what leaves the model (latents, energies, plans) is float32; the CLI's config builds it or refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ami_robot.apps.common import AppError, build_world_model
from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.planners import GradientConfig, gradient_descent
from ami_robot.world_model import WorldModel


@pytest.fixture(scope="module")
def models() -> dict[torch.dtype, WorldModel]:
    return {dtype: WorldModel.from_checkpoint(SHIPPED_DIR, dtype=dtype)
            for dtype in (torch.float32, torch.bfloat16)}


def frames(wm: WorldModel, count: int, seed: int) -> np.ndarray:
    side = wm.image_size
    return np.random.default_rng(seed).integers(0, 256, (count, side * wm.views, side, 3), dtype=np.uint8)


def candidates() -> torch.Tensor:
    """Five clearly different single actions (H = 2): still, and four moves of growing size."""
    a = torch.zeros(5, 2, 7)
    for i, step in enumerate((0.02, 0.04, 0.06, 0.075)):
        a[i + 1, :, i % 3] = step * (-1) ** i
    return a  # (5, 2, 7)


def test_latents_and_energies_leave_a_bfloat16_model_as_float32(models) -> None:
    wm = models[torch.bfloat16]
    assert wm.predictor.predictor_embed.weight.dtype == torch.bfloat16
    z = wm.encode(frames(wm, 2, 0))  # (2, N, D)
    assert z.dtype == torch.float32
    context, state = z[:1, None], torch.zeros(1, 1, 7)
    assert wm.rollout(context, state, candidates()).dtype == torch.float32
    assert wm.planning_cost(context, state, z[1:], horizon=2)(candidates()).dtype == torch.float32


def test_bfloat16_energies_match_float32_and_pick_the_same_candidate(models) -> None:
    costs = {}
    for dtype, wm in models.items():
        z = wm.encode(frames(wm, 2, 1))  # the goal: another random image
        costs[dtype] = wm.planning_cost(z[:1, None], torch.zeros(1, 1, 7), z[1:], horizon=2)(candidates())
    fp32, bf16 = costs[torch.float32], costs[torch.bfloat16]
    assert (fp32 - bf16).abs().max() < 5e-3  # measured ~4e-4 on the shipped model
    assert bf16.argmin() == fp32.argmin()
    assert torch.equal(bf16.argsort()[:2], fp32.argsort()[:2])


def test_the_gradient_planner_runs_through_a_bfloat16_model(models) -> None:
    wm = models[torch.bfloat16]
    z = wm.encode(frames(wm, 2, 2))
    cost = wm.planning_cost(z[:1, None], torch.zeros(1, 1, 7), z[1:], horizon=1)
    plan = gradient_descent(cost, GradientConfig(horizon=1, starts=2, iterations=2),
                            generator=torch.Generator().manual_seed(0))
    assert plan.dtype == torch.float32 and plan.shape == (1, 7) and torch.isfinite(plan).all()


def test_model_dtype_builds_a_bfloat16_model_or_refuses() -> None:
    base = {"kind": "random", "encoder": "micro", "predictor": "micro", "seed": 0, "device": "cpu"}
    wm, record = build_world_model(OmegaConf.create({**base, "dtype": "bfloat16"}))
    assert wm.predictor.predictor_embed.weight.dtype == torch.bfloat16 and record["dtype"] == "bfloat16"
    wm, record = build_world_model(OmegaConf.create({**base, "dtype": "float32"}))
    assert wm.predictor.predictor_embed.weight.dtype == torch.float32 and "dtype" not in record
    refusals = {"float16": "100x slower", "float64": "model.dtype must be one of float32, bfloat16"}
    for value, words in refusals.items():
        with pytest.raises(AppError) as refused:
            build_world_model(OmegaConf.create({**base, "dtype": value}))
        assert words in refused.value.message
