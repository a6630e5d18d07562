"""Linear probes: how much of the scene a frozen encoder's features make linearly readable.

An encoder's worth is measured, never assumed: the same probe runs on the trained encoder and on
its randomly initialised twin, and the trained one must win by a wide margin (DESIGN.md, lesson 2).
"""

from __future__ import annotations

import torch


def pool_features(z: torch.Tensor, grid: tuple[int, int], pooled: int = 4) -> torch.Tensor:
    """Average patch features onto a coarser (pooled x pooled) grid and flatten: (B, N, D) -> (B, P*P*D).

    Pooling keeps where things are (a mean over all patches would not) while making the probe's
    input small enough for a closed-form ridge solve.
    """
    b, n, d = z.shape
    h, w = grid
    if n != h * w:
        raise ValueError(f"features have {n} tokens, the grid {grid} has {h * w}")
    x = z.transpose(1, 2).reshape(b, d, h, w)  # (B, D, H, W)
    x = torch.nn.functional.adaptive_avg_pool2d(x, min(pooled, h))  # (B, D, P, P)
    return x.flatten(1)


def ridge_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    lambdas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
) -> dict[str, object]:
    """Ridge regression x -> y on standardised inputs; returns the test R^2 per target column.

    The regularisation strength is chosen on the last fifth of the training set, then the probe is
    refit on all of it. Split train/test by episode, not by frame, or neighbouring frames leak.
    """
    train_x, test_x = train_x.double(), test_x.double()
    train_y, test_y = train_y.double(), test_y.double()
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    n_fit = int(0.8 * len(train_x))
    best = min(
        lambdas,
        key=lambda lam: _mse(_fit(train_x[:n_fit], train_y[:n_fit], lam), train_x[n_fit:], train_y[n_fit:]),
    )
    weights = _fit(train_x, train_y, best)
    pred = _predict(weights, test_x)
    residual = ((pred - test_y) ** 2).sum(0)
    total = ((test_y - test_y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    r2 = 1.0 - residual / total
    return {"r2": r2.float(), "r2_mean": float(r2.mean()), "lambda": best}


def feature_spread(z: torch.Tensor) -> float:
    """Std of features across the batch, averaged over tokens and dims: near 0 means collapse."""
    return float(z.float().std(dim=0).mean())


def _fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # bias column
    n, d = x1.shape
    if d <= n:  # primal: (X^T X + lam I) W = X^T Y
        gram = x1.T @ x1 + lam * n * torch.eye(d, dtype=x.dtype)
        return torch.linalg.solve(gram, x1.T @ y)
    # dual, cheaper when features outnumber samples: W = X^T (X X^T + lam I)^-1 Y
    kernel = x1 @ x1.T + lam * n * torch.eye(n, dtype=x.dtype)
    return x1.T @ torch.linalg.solve(kernel, y)


def _predict(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1) @ weights


def _mse(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((_predict(weights, x) - y) ** 2).mean())
