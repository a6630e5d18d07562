import json

import numpy as np
import pytest
import torch

from ami_robot.apps import main
from ami_robot.data import concat_trajectories, load_trajectories
from ami_robot.data.dataset import EPISODE_ID_STRIDE
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


def test_two_folders_train_as_one_dataset_with_a_latent_cache_each(toy_data, toy_more_data, tmp_path) -> None:
    enc = _encoder()
    run = train_predictor(_cfg(steps=2), [toy_data, toy_more_data], enc, tmp_path, device="cpu",
                          progress=False)
    one, more = load_trajectories(toy_data), load_trajectories(toy_more_data)
    assert run["frames"] == one.num_frames + more.num_frames
    assert run["data"]["episodes_used"] == 24
    both = concat_trajectories([one, more])  # ids are per folder: the second folder's are moved on
    assert both.episode_ids.tolist() == [*one.episode_ids, *(EPISODE_ID_STRIDE + more.episode_ids)]
    files = [entry["file"] for entry in run["data"]["shards_used"]]
    assert any(f.startswith(str(toy_data)) for f in files)
    assert any(f.startswith(str(toy_more_data)) for f in files)
    # each folder's latents are cached on their own, and equal what that folder alone encodes to
    assert torch.equal(latents_for(more, enc, tmp_path / "latents.1.pt", progress=False),
                       latents_for(more, enc, tmp_path / "alone.pt", progress=False))


def test_a_latent_cache_of_other_shards_is_not_reused(toy_data, toy_more_data, tmp_path) -> None:
    enc = _encoder()
    cached = latents_for(load_trajectories(toy_more_data), enc, tmp_path / "latents.pt", progress=False)
    few = load_trajectories(toy_data, episode_filter=lambda m: m["seed"] < 8)  # as many frames, other shards
    assert few.num_frames == cached.shape[0]
    again = latents_for(few, enc, tmp_path / "latents.pt", progress=False)
    assert torch.equal(again, latents_for(few, enc, tmp_path / "alone.pt", progress=False))
    assert not torch.equal(again, cached)


def test_the_same_folder_twice_is_refused(toy_data, tmp_path) -> None:
    with pytest.raises(ValueError, match="each folder may be given once"):
        train_predictor(_cfg(steps=2), [toy_data, toy_data], _encoder(), tmp_path, device="cpu",
                        progress=False)


def test_folders_with_different_views_are_refused(toy_data, toy_two_view_data, tmp_path) -> None:
    with pytest.raises(ValueError, match="same views"):
        train_predictor(_cfg(steps=2), [toy_data, toy_two_view_data], _encoder(), tmp_path, device="cpu",
                        progress=False)


def test_bfloat16_autocast_trains_float32_weights_to_nearly_the_same_loss(toy_data, tmp_path) -> None:
    enc = _encoder()
    runs = {kind: train_predictor(_cfg(steps=3, autocast=kind), toy_data, enc, tmp_path / kind, device="cpu",
                                  progress=False) for kind in ("float32", "bfloat16")}
    assert all(p.dtype == torch.float32 for p in runs["bfloat16"]["predictor"].parameters())
    rows = {kind: [json.loads(line) for line in (tmp_path / kind / "metrics.jsonl").read_text().splitlines()]
            for kind in runs}
    first = {kind: rows[kind][0]["loss"] for kind in rows}  # the same weights and batch at step 0
    assert first["bfloat16"] != first["float32"]
    assert abs(first["bfloat16"] - first["float32"]) < 0.02 * first["float32"]
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["grad_norm"]) for r in rows["bfloat16"])


def test_unknown_autocast_is_refused() -> None:
    with pytest.raises(ValueError, match="autocast must be one of float32, bfloat16"):
        _cfg(autocast="float16")


def test_cli_trains_on_two_folders_and_its_card_says_how(toy_data, toy_more_data, tmp_path) -> None:
    enc = tmp_path / "encoder.safetensors"
    save_model(_encoder(), enc)
    out = tmp_path / "run"
    main(["train-predictor", f"data_dir={toy_data}", f"extra_data=[{toy_more_data}]", f"encoder={enc}",
          f"out_dir={out}", "predictor.predictor=micro", "predictor.steps=2", "predictor.warmup_steps=1",
          "predictor.batch_size=4", "predictor.holdout_every=4", "predictor.autocast=bfloat16",
          f"hydra.run.dir={tmp_path / 'hydra'}"])
    card = json.loads((out / "predictor.json").read_text())
    assert card["data"]["episodes_used"] == 24 and str(toy_more_data) in card["data"]["dir"]
    assert card["training"]["settings"]["autocast"] == "bfloat16"
    assert card["training"]["settings"]["peak_lr"] == PredictorTrainConfig().peak_lr
    assert (out / "latents.pt").is_file() and (out / "latents.1.pt").is_file()
