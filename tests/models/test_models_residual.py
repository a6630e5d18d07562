"""PredictorConfig.residual: the predictor adds its output to the step's own frame tokens."""

from __future__ import annotations

import dataclasses

import torch

from ami_robot.models import PREDICTOR_CONFIGS, ACPredictor
from ami_robot.world_model import WorldModel, normalise

N, D = 64, 96


def residual_config(views: int = 1):
    return dataclasses.replace(PREDICTOR_CONFIGS["micro"], residual=True, views=views)


def inputs(rows: int, steps: int, views: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    z = normalise(torch.randn(rows, steps, views * N, D, generator=g))
    return z, 0.05 * torch.randn(rows, steps, 7, generator=g), 0.1 * torch.randn(rows, steps, 7, generator=g)


def test_untrained_residual_predictor_is_copy_last() -> None:
    """The output projection starts at zero: every step predicts its own frame, "nothing moves"."""
    torch.manual_seed(0)
    predictor = ACPredictor(residual_config())
    z, a, s = inputs(3, 4)
    torch.testing.assert_close(predictor(z, a, s), z, rtol=0, atol=0)
    assert ACPredictor(PREDICTOR_CONFIGS["micro"]).predictor_proj.weight.abs().sum() > 0  # plain: random


def test_residual_is_the_plain_output_plus_the_frame() -> None:
    torch.manual_seed(0)
    plain = ACPredictor(PREDICTOR_CONFIGS["micro"])
    residual = ACPredictor(residual_config())
    residual.load_state_dict(plain.state_dict())  # same parameter names: the flag adds none
    z, a, s = inputs(2, 3)
    torch.testing.assert_close(residual(z, a, s), plain(z, a, s) + z, rtol=0, atol=1e-6)


def test_residual_with_shared_context_rows_and_cache() -> None:
    """Candidates sharing an episode's context rows (G < B) add that episode's frame, cached or not."""
    wm = WorldModel.random("micro", residual_config(views=2), seed=3)
    torch.nn.init.normal_(wm.predictor.predictor_proj.weight, std=0.05)  # a trained-looking output
    z, _, s = inputs(2, 2, views=2)
    a = 0.05 * torch.randn(6, 3, 7, generator=torch.Generator().manual_seed(1))
    z_rows, s_rows = z.repeat_interleave(3, 0), s.repeat_interleave(3, 0)
    cached = wm.rollout(z, s, a)
    torch.testing.assert_close(cached, wm.rollout(z_rows, s_rows, a, use_cache=False), atol=1e-5, rtol=0)
    goal = normalise(torch.randn(2, 2 * N, D))
    expected = WorldModel.energy(cached[:, -1], goal.repeat_interleave(3, 0))
    torch.testing.assert_close(wm.planning_cost(z, s, goal, 3)(a), expected, atol=1e-5, rtol=0)


def test_the_two_view_model_in_checkpoints_is_the_shipped_encoder_and_a_residual_predictor() -> None:
    """checkpoints/two_view (in progress, not the default: docs/results.md) reads both views with the
    shipped encoder, unchanged, and a residual tiny4 predictor."""
    from omegaconf import OmegaConf

    from ami_robot.apps.common import build_world_model
    from ami_robot.checkpoints import SHIPPED_DIR
    from ami_robot.train.train_predictor import initial_predictor

    two_view = WorldModel.from_checkpoint(SHIPPED_DIR / "two_view")
    expected = dataclasses.replace(PREDICTOR_CONFIGS["tiny4"], views=2, residual=True)
    assert two_view.views == 2 and two_view.predictor.config == expected
    shipped, _ = build_world_model(OmegaConf.create({"kind": "checkpoint", "path": None, "device": "cpu"}))
    # model=two_view
    named, record = build_world_model(OmegaConf.create({"kind": "checkpoint", "shipped": "two_view"}))
    assert named.views == 2 and record["path"] == str(SHIPPED_DIR / "two_view")
    ours, theirs = two_view.encoder.state_dict(), shipped.encoder.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # what train-predictor's predictor.init_from=checkpoints/two_view starts from
    start = initial_predictor(SHIPPED_DIR / "two_view", expected).state_dict()
    assert all(torch.equal(start[k], v) for k, v in two_view.predictor.state_dict().items())
