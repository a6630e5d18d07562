import json

import numpy as np
import pytest
import torch

from ami_robot.data import load_trajectories
from ami_robot.models.encoder import ENCODER_CONFIGS, VisionTransformer
from ami_robot.train.train_predictor import (
    PredictorTrainConfig,
    latents_for,
    prediction_error_by_horizon,
    split_episodes,
    train_predictor,
)
from ami_robot.weights import save_model


def _cfg(**kw) -> PredictorTrainConfig:
    base = dict(predictor="micro", clip_len=3, rollout_steps=2, batch_size=8, steps=4, warmup_steps=1,
                checkpoint_every=2, log_every=1, holdout_every=4)
    base.update(kw)
    return PredictorTrainConfig(**base)


def _encoder() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(ENCODER_CONFIGS["micro"])


def test_train_predictor_resumes_identically(toy_data, tmp_path) -> None:
    enc = _encoder()
    a = train_predictor(_cfg(), toy_data, enc, tmp_path / "a", device="cpu", progress=False)
    train_predictor(_cfg(), toy_data, enc, tmp_path / "b", device="cpu", progress=False, stop_after=2)
    b = train_predictor(_cfg(), toy_data, enc, tmp_path / "b", device="cpu", progress=False)
    sa, sb = a["predictor"].state_dict(), b["predictor"].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert {"teacher_forcing", "rollout"} <= set(rows[0])


def test_latent_cache_is_reused_only_for_the_same_encoder(toy_data, tmp_path) -> None:
    data = load_trajectories(toy_data)
    enc = _encoder()
    first = latents_for(data, enc, tmp_path / "latents.pt", progress=False)
    assert first.dtype == torch.float16 and first.shape[:2] == (data.num_frames, 64)
    assert torch.equal(latents_for(data, enc, tmp_path / "latents.pt", progress=False), first)
    other = VisionTransformer(ENCODER_CONFIGS["micro"])
    assert not torch.equal(latents_for(data, other, tmp_path / "latents.pt", progress=False), first)


def test_trained_predictor_beats_copying_the_last_frame(toy_data, tmp_path) -> None:
    enc = _encoder()
    cfg = _cfg(steps=150, checkpoint_every=150, peak_lr=2e-3, warmup_steps=10)
    out = train_predictor(cfg, toy_data, enc, tmp_path, device="cpu", progress=False)
    data = load_trajectories(toy_data)
    latents = latents_for(data, enc, tmp_path / "latents.pt", progress=False)
    train_eps, held_eps = split_episodes(data, cfg.holdout_every)
    assert len(held_eps) and not set(train_eps) & set(held_eps)
    errors = prediction_error_by_horizon(out["predictor"], data, latents, train_eps, horizons=3)
    assert np.all(np.array(errors["model"]) < np.array(errors["copy_last"]))


def test_two_view_data_trains_a_two_view_predictor(toy_two_view_data, tmp_path) -> None:
    data = load_trajectories(toy_two_view_data)
    enc = _encoder()
    latents = latents_for(data, enc, tmp_path / "latents.pt", progress=False)
    assert data.views == 2 and latents.shape[1] == 128  # both views' 64 tokens, view-major
    run = train_predictor(_cfg(steps=2), toy_two_view_data, enc, tmp_path / "run", device="cpu",
                          progress=False)
    assert run["predictor"].config.views == 2
    _, held = split_episodes(data, 4)
    errors = prediction_error_by_horizon(run["predictor"], data, latents, held, horizons=2)
    assert len(errors["model"]) == 2 and all(np.isfinite(errors["model"]))


def test_init_from_starts_where_a_saved_predictor_ends(toy_data, tmp_path) -> None:
    enc = _encoder()
    first = train_predictor(_cfg(), toy_data, enc, tmp_path / "a", device="cpu", progress=False)
    saved = tmp_path / "first" / "predictor.safetensors"
    save_model(first["predictor"], saved)  # per file; a hub folder is tested in test_models_residual
    cfg = _cfg(init_from=str(saved))
    start = train_predictor(cfg, toy_data, enc, tmp_path / "b", device="cpu", progress=False, stop_after=0)
    sa, sb = first["predictor"].state_dict(), start["predictor"].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    trained = train_predictor(cfg, toy_data, enc, tmp_path / "b", device="cpu", progress=False)
    assert any(not torch.equal(sa[k], trained["predictor"].state_dict()[k]) for k in sa)  # and it trains on
    with pytest.raises(ValueError, match="init_from=.*set predictor.predictor and predictor.residual"):
        train_predictor(_cfg(init_from=str(saved), residual=True), toy_data, enc, tmp_path / "c",
                        device="cpu", progress=False)
