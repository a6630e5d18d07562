"""The hub layout (ami_robot/hub.py): WorldModel.save_pretrained / from_pretrained through
huggingface_hub's ModelHubMixin, its config.json and model card, model.path= with such a folder, the
per-file layout still loading, damaged files named with the fix, and never the network."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import huggingface_hub.hub_mixin
import pytest
import torch
from huggingface_hub import ModelCard
from omegaconf import DictConfig, OmegaConf

from ami_robot.apps.common import AppError, build_world_model
from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.hub import HUB_FORMAT, Card, Metric, card_from_cards, load_part
from ami_robot.models import PREDICTOR_CONFIGS
from ami_robot.weights import CheckpointError, save_model
from ami_robot.world_model import WorldModel

METRIC = Metric("Reach", "ami_robot/Reach-v0", "held-out seeds from 10000", "success_rate", 0.96,
                "ami-robot eval tasks=[Reach] episodes=50", "latent CEM 128 x 4: 48/50")
CARD = Card(name="micro-test", text="# A micro model\n\nRandom weights.", metrics=(METRIC,),
            provenance={"encoder": {"note": "random"}})


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 as the library reads it, and a download is a failure."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hub loader tried to download")

    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", refuse)


@pytest.fixture(scope="module")
def model() -> WorldModel:
    return WorldModel.random("micro", dataclasses.replace(PREDICTOR_CONFIGS["micro"], residual=True), seed=3)


def checkpoint(folder: Path) -> DictConfig:
    """The `model` node of model=shipped model.path=FOLDER."""
    return OmegaConf.create({"kind": "checkpoint", "path": str(folder), "device": "cpu"})


def same_tensors(a: WorldModel, b: WorldModel) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_keeps_every_tensor_and_config(model: WorldModel, tmp_path: Path) -> None:
    folder = model.save_pretrained(tmp_path / "m", card=CARD)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = WorldModel.from_pretrained(folder)
    assert same_tensors(model, loaded) and loaded.checkpoint_dir == folder
    assert loaded.encoder.config == model.encoder.config and loaded.predictor.config == model.predictor.config
    assert loaded.predictor.config.residual  # a field the per-file cards predate
    assert same_tensors(model, WorldModel.from_checkpoint(folder))  # either layout through one door
    assert same_tensors(model, WorldModel.from_checkpoint(folder / "model.safetensors"))


def test_config_json_and_model_card(model: WorldModel, tmp_path: Path) -> None:
    folder = model.save_pretrained(tmp_path / "m", card=CARD)
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == HUB_FORMAT
    assert config["encoder_config"] == dataclasses.asdict(model.encoder.config)
    assert config["predictor_config"] == dataclasses.asdict(model.predictor.config)
    assert len(config["sha256"]["model.safetensors"]) == 64 and config["provenance"] == CARD.provenance
    with open(folder / "model.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    names = [k for k in header if k != "__metadata__"]
    assert names and all(k.startswith(("encoder.", "predictor.")) for k in names)
    assert "encoder.blocks.0.attn.qkv.weight" in names  # the reference names, under the part's prefix
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "ami-robot"
    assert {"v-jepa-2", "world-model", "robotics"} <= set(card.data.tags)
    assert card.data.model_name == "micro-test" and card.text.strip().startswith("# A micro model")
    (result,) = card.data.eval_results
    assert (result.task_name, result.metric_type, result.metric_value) == ("Reach", "success_rate", 0.96)
    assert result.metric_args == {"command": METRIC.command}
    with pytest.raises(ValueError, match="command"):
        Metric("Reach", "ami_robot/Reach-v0", "dev", "success_rate", 1.0, " ")


def test_saving_again_keeps_the_artefacts_and_replaces_the_card(model: WorldModel, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("an old card about other weights\n")
    (folder / "memory.json").write_text("{}\n")
    model.save_pretrained(folder)
    assert (folder / "memory.json").read_text() == "{}\n"
    assert "other weights" not in (folder / "README.md").read_text()
    assert ModelCard.load(folder / "README.md").data.library_name == "ami-robot"


def test_model_path_takes_a_hub_folder_and_the_per_file_layout(model: WorldModel, tmp_path: Path) -> None:
    hub = model.save_pretrained(tmp_path / "hub", card=CARD)
    wm, record = build_world_model(checkpoint(hub))
    assert same_tensors(model, wm) and wm.checkpoint_dir == hub
    assert record["layout"] == "hub" and record["sha256"] == json.loads(
        (hub / "config.json").read_text())["sha256"]["model.safetensors"]
    old = tmp_path / "old"
    save_model(model.encoder, old / "encoder.safetensors")
    save_model(model.predictor, old / "predictor.safetensors")
    wm, record = build_world_model(checkpoint(old))
    assert same_tensors(model, wm) and wm.checkpoint_dir == old and "encoder_sha256" in record
    for path in (hub, hub / "model.safetensors", old, old / "encoder.safetensors"):  # what encoder= takes
        encoder = load_part(path, "encoder")
        assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder.state_dict().items())


def test_per_file_cards_convert_to_a_hub_card(model: WorldModel, tmp_path: Path) -> None:
    old = tmp_path / "old"
    evaluation = {"probe": {"trained": {"r2_mean": 0.6}, "random_init": {"r2_mean": 0.48}}}
    save_model(model.encoder, old / "encoder.safetensors", evaluation=evaluation,
               recipe={"command": "ami-robot reproduce"})
    save_model(model.predictor, old / "predictor.safetensors", recipe={"command": "ami-robot reproduce"},
               evaluation={"prediction_l1_by_horizon": {"model": [0.1, 0.2], "copy_last": [0.3, 0.4]}})
    (old / "README.md").write_text("# Old card\n")
    card = card_from_cards(old, metrics=(METRIC,))
    assert [m.type for m in card.metrics] == ["r_squared", "latent_l1", "latent_l1", "success_rate"]
    assert all(m.command for m in card.metrics) and card.text == "# Old card\n"
    assert card.provenance["encoder"]["sha256"] == json.loads((old / "encoder.json").read_text())["sha256"]
    folder = WorldModel.from_checkpoint(old).save_pretrained(tmp_path / "new", card=card)
    assert same_tensors(model, WorldModel.from_pretrained(folder))


def test_damaged_or_missing_files_are_named_with_the_fix(model: WorldModel, tmp_path: Path) -> None:
    good = model.save_pretrained(tmp_path / "good", card=CARD)

    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    missing = copy("missing")
    (missing / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"missing/model\.safetensors is missing; restore"):
        WorldModel.from_pretrained(missing)
    flipped = copy("flipped")
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (flipped / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flipped/model\.safetensors: sha256 .* damaged or was rep"):
        WorldModel.from_pretrained(flipped)
    bad_json = copy("bad_json")
    (bad_json / "config.json").write_text('{"format": "ami-robot/hub-v1", "enc')
    with pytest.raises(CheckpointError, match=r"bad_json/config\.json: not valid JSON"):
        WorldModel.from_pretrained(bad_json)
    wrong = copy("wrong")
    config = json.loads((wrong / "config.json").read_text())
    config["encoder_config"]["dim"] = 2 * config["encoder_config"]["dim"]
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"wrong/model\.safetensors \(encoder\.\*\) does not fit"):
        WorldModel.from_pretrained(wrong)
    with pytest.raises(AppError) as err:
        build_world_model(checkpoint(flipped))
    assert "flipped/model.safetensors" in err.value.message
    with pytest.raises(CheckpointError, match="not a folder"):
        WorldModel.from_pretrained("facebook/vjepa2-vitl-fpc64-256")  # a Hub id: refused, not downloaded


def test_the_shipped_checkpoints_are_one_hub_folder() -> None:
    names = {p.name for p in SHIPPED_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "memory.safetensors", "memory.json",
            "locator.safetensors", "locator.json"} <= names
    assert not names & {"encoder.safetensors", "predictor.safetensors", "encoder.json", "predictor.json"}
    wm = WorldModel.from_pretrained(SHIPPED_DIR)
    assert wm.checkpoint_dir == SHIPPED_DIR and wm.image_size == 64
    card = ModelCard.load(SHIPPED_DIR / "README.md")
    assert card.data.library_name == "ami-robot" and len(card.data.eval_results) >= 10
    commands = [r.metric_args["command"] for r in card.data.eval_results]
    assert all(c.startswith("ami-robot ") for c in commands)
    assert "ami-robot eval tasks=[Reach] episodes=50" in commands
