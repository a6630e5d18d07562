"""model.compile=true: planning costs through the compiled predictor equal the eager ones, gradients
still flow (the gradient planner runs the eager predictor), the weights' names are unchanged, and the
CLI's config builds it, records it, or refuses a value that is not a boolean."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch._dynamo.utils import counters

from ami_robot.apps.common import AppError, build_world_model
from ami_robot.world_model import WorldModel

BASE = {"kind": "random", "encoder": "micro", "predictor": "micro", "seed": 0, "device": "cpu",
        "dtype": "float32"}


def test_compiled_planning_costs_equal_the_eager_ones() -> None:
    eager = WorldModel.random("micro", "micro", seed=0)
    compiled = WorldModel.random("micro", "micro", seed=0).compile_planning()
    assert list(compiled.state_dict()) == list(eager.state_dict())  # nothing registered by compiling
    frames = torch.randint(0, 256, (3, eager.image_size, eager.image_size, 3), dtype=torch.uint8)
    z = eager.encode(frames)
    actions = 0.03 * torch.randn(2 * 12, 2, 7, generator=torch.Generator().manual_seed(0))
    costs = []
    for wm in (eager, compiled):
        cost = wm.planning_cost(z[:2, None], torch.zeros(2, 1, 7), z[2:], horizon=2)
        with torch.no_grad():
            costs.append(cost(actions))
            costs.append(cost(actions[:2 * 7]))  # another population size: no recompile error
    assert counters["stats"]["unique_graphs"] > 0  # compiled indeed, not the eager fallback
    assert torch.allclose(costs[0], costs[2], atol=1e-5) and torch.allclose(costs[1], costs[3], atol=1e-5)
    grad_actions = actions.clone().requires_grad_(True)
    compiled.planning_cost(z[:2, None], torch.zeros(2, 1, 7), z[2:], horizon=2)(grad_actions).sum().backward()
    assert grad_actions.grad is not None and grad_actions.grad.abs().sum() > 0


def test_model_compile_is_built_recorded_or_refused() -> None:
    wm, record = build_world_model(OmegaConf.create({**BASE, "compile": True}))
    assert record["compile"] is True and wm._compiled_step is not None
    wm, record = build_world_model(OmegaConf.create({**BASE, "compile": False}))
    assert "compile" not in record and wm._compiled_step is None
    with pytest.raises(AppError) as refused:
        build_world_model(OmegaConf.create({**BASE, "compile": "yes"}))
    assert "model.compile must be true or false" in refused.value.message
