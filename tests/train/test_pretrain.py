import json

import pytest
import torch

from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder


def _cfg(**kw) -> PretrainConfig:
    base = dict(encoder="micro", predictor_dim=48, predictor_depth=1, predictor_heads=1, batch_size=8,
                steps=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    base.update(kw)
    return PretrainConfig(**base)


def test_pretrain_runs_logs_and_resumes_identically(toy_data, tmp_path) -> None:
    straight = pretrain_encoder(_cfg(), toy_data, tmp_path / "a", device="cpu", progress=False)
    # Same run, interrupted after 2 steps (as a kill after the checkpoint would), then resumed.
    pretrain_encoder(_cfg(steps=4), toy_data, tmp_path / "b", device="cpu", progress=False,
                     stop_after=2)
    resumed = pretrain_encoder(_cfg(), toy_data, tmp_path / "b", device="cpu", progress=False)
    a, b = straight["target_encoder"].state_dict(), resumed["target_encoder"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and '"jepa_l1"' in lines[0] and '"target_spread"' in lines[0]


def test_pretrain_refuses_other_config_on_resume(toy_data, tmp_path) -> None:
    pretrain_encoder(_cfg(steps=2), toy_data, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="another config"):
        pretrain_encoder(_cfg(steps=2, peak_lr=1e-3), toy_data, tmp_path, device="cpu", progress=False)


def test_pretrain_learns_on_toy_data(toy_data, tmp_path) -> None:
    out = pretrain_encoder(_cfg(steps=30, checkpoint_every=30, var_weight=0.0, cov_weight=0.0),
                           toy_data, tmp_path, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["jepa_l1"] for r in rows[:5]) / 5
    last = sum(r["jepa_l1"] for r in rows[-5:]) / 5
    assert last < first
    assert out["steps"] == 30
