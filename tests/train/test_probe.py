import torch

from ami_robot.train.probe import _fit, feature_spread, ridge_probe
from ami_robot.world_model import pool_features


def test_probe_recovers_a_linear_map_and_fails_on_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=gen)
    w = torch.randn(20, 3, generator=gen)
    y = x @ w + 0.01 * torch.randn(400, 3, generator=gen)
    good = ridge_probe(x[:300], y[:300], x[300:], y[300:])
    assert good["r2_mean"] > 0.99
    noise = torch.randn(400, 20, generator=gen)
    bad = ridge_probe(noise[:300], y[:300], noise[300:], y[300:])
    assert bad["r2_mean"] < 0.2


def test_dual_form_equals_primal() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(30, 50, generator=gen, dtype=torch.float64)  # more features than samples
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    primal = torch.linalg.solve(x.T @ x + 0.1 * 30 * torch.eye(50, dtype=x.dtype), x.T @ y)
    assert torch.allclose(_fit(x, y, 0.1), primal, atol=1e-8)


def test_heavy_regularisation_falls_back_to_the_mean_not_to_zero() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(200, 40, generator=gen)
    y = 0.5 + 0.01 * torch.randn(200, 1, generator=gen)  # far from 0, unrelated to x
    out = ridge_probe(x[:150], y[:150], x[150:], y[150:], lambdas=(1e4,))
    assert out["r2_mean"] > -0.2  # an unpenalised intercept: about the mean's R^2 of 0


def test_pool_keeps_where_things_are() -> None:
    z = torch.zeros(2, 64, 4)
    z[0, 0] = 1.0  # top-left patch of sample 0
    z[1, 63] = 1.0  # bottom-right patch of sample 1
    pooled = pool_features(z, (8, 8), pooled=2).reshape(2, 4, 2, 2)
    assert pooled[0, :, 0, 0].sum() > 0 and pooled[0, :, 1, 1].sum() == 0
    assert pooled[1, :, 1, 1].sum() > 0 and pooled[1, :, 0, 0].sum() == 0


def test_feature_spread_detects_collapse() -> None:
    assert feature_spread(torch.ones(8, 4, 3)) == 0.0
    assert feature_spread(torch.randn(8, 4, 3)) > 0.5
