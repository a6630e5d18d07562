"""The sub-goal maker: shapes, its untrained start (the first frame), what it attends to, bad input."""

from __future__ import annotations

import pytest
import torch

from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker
from ami_robot.world_model import normalise

CONFIG = SubgoalConfig(input_dim=24, grid=2, views=2, moments=3, dim=24, depth=2, heads=2, mlp_dim=32)


def latents(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return normalise(torch.randn(batch, CONFIG.tokens, CONFIG.input_dim, generator=g))


def test_untrained_maker_returns_the_first_frame() -> None:
    maker = SubgoalMaker(CONFIG)
    start, goal = latents(4, 0), latents(4, 1)
    torch.testing.assert_close(maker(start, goal, torch.tensor([0, 1, 2, 0])), start, atol=1e-4, rtol=0)


def test_made_latents_depend_on_goal_and_moment_and_learn() -> None:
    torch.manual_seed(0)
    maker = SubgoalMaker(CONFIG)
    torch.nn.init.normal_(maker.head.weight, std=0.1)
    start, goal = latents(2, 0), latents(2, 1)
    k = torch.tensor([0, 1])
    made = maker(start, goal, k)
    assert made.shape == start.shape
    torch.testing.assert_close(made.mean(-1), torch.zeros(2, CONFIG.tokens), atol=1e-5, rtol=0)  # normalised
    assert (maker(start, latents(2, 2), k) - made).abs().max() > 1e-3
    assert (maker(start, goal, torch.tensor([2, 2])) - made).abs().max() > 1e-3
    target = latents(2, 3)
    opt = torch.optim.Adam(maker.parameters(), lr=1e-2)
    first = (maker(start, goal, k) - target).abs().mean().item()
    for _ in range(30):
        loss = (maker(start, goal, k) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first


def test_bad_shapes_and_configs_are_refused() -> None:
    maker = SubgoalMaker(CONFIG)
    with pytest.raises(ValueError, match="z_start and z_goal"):
        maker(latents(2, 0)[:, :4], latents(2, 1)[:, :4], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="moments"):
        SubgoalConfig(moments=0)
    with pytest.raises(ValueError, match="heads"):
        SubgoalConfig(dim=30, heads=4)
