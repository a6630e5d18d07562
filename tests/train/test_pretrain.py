import json

import pytest
import torch

from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder
from ami_robot.weights import save_model


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
    assert '"next_l1"' in lines[0]


def test_pretrain_refuses_other_config_on_resume(toy_data, tmp_path) -> None:
    pretrain_encoder(_cfg(steps=2), toy_data, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="another config"):
        pretrain_encoder(_cfg(steps=2, peak_lr=1e-3), toy_data, tmp_path, device="cpu", progress=False)


def test_pretrain_learns_on_toy_data(toy_data, tmp_path) -> None:
    out = pretrain_encoder(_cfg(steps=30, checkpoint_every=30), toy_data, tmp_path, device="cpu",
                           progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for key in ("jepa_l1", "next_l1"):  # both the masked and the action-conditioned term fall
        first = sum(r[key] for r in rows[:5]) / 5
        last = sum(r[key] for r in rows[-5:]) / 5
        assert last < first, key
    assert out["steps"] == 30


def test_pretrain_masked_prediction_alone(toy_data, tmp_path) -> None:
    pretrain_encoder(_cfg(steps=2, dynamics_weight=0.0), toy_data, tmp_path, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["next_l1"] == 0.0 for r in rows)


def test_dynamics_head_fits_the_encoder_and_bad_names_are_refused() -> None:
    head = _cfg().dynamics_config  # the "tiny" predictor, re-fitted to the micro encoder's width
    assert head.input_dim == _cfg().encoder_config.dim and head.grid == _cfg().encoder_config.grid
    with pytest.raises(ValueError, match="unknown dynamics_predictor 'huge'"):
        _cfg(dynamics_predictor="huge")
    with pytest.raises(ValueError, match="num_frames must be >= 2"):
        _cfg(num_frames=1)


def test_pretrain_on_two_views_shows_each_clip_one_view(toy_two_view_data, tmp_path) -> None:
    run = pretrain_encoder(_cfg(steps=2), toy_two_view_data, tmp_path, device="cpu", progress=False)
    assert run["target_encoder"].config.img_size == 64  # the views' size, not the stacked frame's height


def test_init_from_goes_on_from_a_saved_encoder(toy_data, tmp_path) -> None:
    first = pretrain_encoder(_cfg(steps=2), toy_data, tmp_path / "a", device="cpu", progress=False)
    saved = tmp_path / "first" / "encoder.safetensors"
    save_model(first["target_encoder"], saved)
    start = pretrain_encoder(_cfg(init_from=str(saved)), toy_data, tmp_path / "b", device="cpu",
                             progress=False, stop_after=0)
    sa, sb = first["target_encoder"].state_dict(), start["target_encoder"].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    trained = pretrain_encoder(_cfg(init_from=str(saved)), toy_data, tmp_path / "b", device="cpu",
                               progress=False)
    assert any(not torch.equal(sa[k], trained["target_encoder"].state_dict()[k]) for k in sa)
    with pytest.raises(ValueError, match="init_from=.*set pretrain.encoder"):
        pretrain_encoder(_cfg(init_from=str(saved), encoder="tiny"), toy_data, tmp_path / "c",
                         device="cpu", progress=False)
