"""The reproduce pipeline end to end at a toy scale: every stage runs, resumes, and exports."""

import json

from ami_robot.policies.retrieval import Locator
from ami_robot.train.locator import LocatorTrainConfig
from ami_robot.train.pipeline import ReproduceConfig, reproduce
from ami_robot.train.pretrain import PretrainConfig
from ami_robot.train.train_predictor import PredictorTrainConfig
from ami_robot.weights import read_card
from ami_robot.world_model import WorldModel


def test_reproduce_toy_scale(tmp_path) -> None:
    cfg = ReproduceConfig(
        out_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "ckpt"), train_episodes=4, val_episodes=4,
        num_workers=0, device="cpu",
        pretrain=PretrainConfig(encoder="micro", steps=2, warmup_steps=1, batch_size=4, checkpoint_every=1),
        predictor=PredictorTrainConfig(predictor="micro", steps=2, warmup_steps=1, batch_size=4,
                                       checkpoint_every=1),
        locator=LocatorTrainConfig(steps=3, batch_size=4, recoloured_copies=1),
    )
    stages = reproduce(cfg, progress=False)
    assert {"collect_train", "collect_val", "probe", "prediction", "export"} <= set(stages)
    assert set(stages["probe"]) == {"trained", "random_init"}
    assert len(stages["prediction"]["model"]) == len(stages["prediction"]["copy_last"]) == 8
    card = read_card(tmp_path / "ckpt" / "encoder.safetensors")  # sha256 verified
    assert card["evaluation"]["probe"]["trained"]["scored_frames"] > 0
    assert card["data"]["train"]["seed"] == 0 and card["data"]["val"]["seed"] == 9_000
    WorldModel.from_checkpoint(tmp_path / "ckpt")  # the export loads as a world model
    assert "linear probe" in (tmp_path / "ckpt" / "README.md").read_text()
    assert "locator.safetensors" in (tmp_path / "ckpt" / "README.md").read_text()
    locator = Locator.load(tmp_path / "ckpt" / "locator.safetensors")
    locator.check(WorldModel.from_checkpoint(tmp_path / "ckpt"))  # trained on this encoder's latents
    assert stages["locator"]["recorded"]["object_xy_cm_median"] > 0
    # A second call finds every stage done and only rewrites the export.
    again = reproduce(cfg, progress=False)
    assert again["probe"] == stages["probe"] and again["locator"] == stages["locator"]  # not retrained
    assert json.loads((tmp_path / "run" / "stages.json").read_text())["export"]
