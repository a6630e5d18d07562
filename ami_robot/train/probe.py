"""Linear probes: how much of the scene a frozen encoder's features make linearly readable.

An encoder's worth is measured, never assumed: the same probe runs on the trained encoder and on
its randomly initialised twin, and the trained one must win by a wide margin (DESIGN.md, lesson 2).
"""

from __future__ import annotations

import torch


def ridge_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    lambdas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4),
    groups: torch.Tensor | None = None,
    folds: int = 5,
) -> dict[str, object]:
    """Ridge regression x -> y on standardised inputs; returns the test R^2 per target column.

    The regularisation strength is chosen by `folds`-fold cross-validation on the training set,
    folds made of whole groups (episodes) when `groups` is given so neighbouring frames do not
    leak; then the probe is refit on all of it. Split train/test by episode, not by frame.
    """
    train_x, test_x = train_x.double(), test_x.double()
    train_y, test_y = train_y.double(), test_y.double()
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    # Centre the targets on the training mean: the intercept is then not shrunk by the penalty.
    y_mean = train_y.mean(0)
    train_y, test_y = train_y - y_mean, test_y - y_mean
    keys = groups if groups is not None else torch.arange(len(train_x))
    fold_of = torch.remainder(torch.unique(keys, return_inverse=True)[1], folds)  # (n,)

    def cv_error(lam: float) -> float:
        errors = []
        for k in range(folds):
            held = fold_of == k
            if held.all() or not held.any():
                continue
            errors.append(_mse(_fit(train_x[~held], train_y[~held], lam), train_x[held], train_y[held]))
        return sum(errors) / max(1, len(errors))

    best = min(lambdas, key=cv_error)
    weights = _fit(train_x, train_y, best)
    residual = ((_predict(weights, test_x) - test_y) ** 2).sum(0)
    total = ((test_y - test_y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    r2 = 1.0 - residual / total
    return {"r2": r2.float(), "r2_mean": float(r2.mean()), "lambda": best}


def feature_spread(z: torch.Tensor) -> float:
    """Std of features across the batch, averaged over tokens and dims: near 0 means collapse."""
    return float(z.float().std(dim=0).mean())


def _fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Ridge weights for centred x and y (no intercept): the primal or the dual form, whichever is smaller."""
    n, d = x.shape
    if d <= n:  # (X^T X + lam n I) W = X^T Y
        return torch.linalg.solve(x.T @ x + lam * n * torch.eye(d, dtype=x.dtype), x.T @ y)
    # W = X^T (X X^T + lam n I)^-1 Y, the same solution, cheaper when features outnumber samples
    return x.T @ torch.linalg.solve(x @ x.T + lam * n * torch.eye(n, dtype=x.dtype), y)


def _predict(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ weights


def _mse(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((_predict(weights, x) - y) ** 2).mean())
