"""Checkpoints in every format, written here with random weights, load back into identical outputs;
every way a file can be wrong is a clear error; pickles never run code."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ami_robot.models import ENCODER_CONFIGS, PREDICTOR_CONFIGS, ACPredictor, VisionTransformer
from ami_robot.weights import (
    CheckpointError,
    load_encoder,
    load_ours,
    load_predictor,
    load_strict,
    read_card,
    save_model,
)

VIDEO = torch.randn(1, 3, 2, 64, 64, generator=torch.Generator().manual_seed(0))


def encoder(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(ENCODER_CONFIGS["micro"]).eval()


def predictor(seed: int = 0) -> ACPredictor:
    torch.manual_seed(seed)
    return ACPredictor(PREDICTOR_CONFIGS["micro"]).eval()


def same_encoder_outputs(a: VisionTransformer, b: VisionTransformer) -> None:
    with torch.no_grad():
        torch.testing.assert_close(a(VIDEO), b(VIDEO), atol=0, rtol=0)


def same_predictor_outputs(a: ACPredictor, b: ACPredictor) -> None:
    z, act = torch.randn(1, 2, 64, 96), torch.randn(1, 2, 7)
    with torch.no_grad():
        torch.testing.assert_close(a(z, act, act), b(z, act, act), atol=0, rtol=0)


def test_ours_round_trip(tmp_path: Path) -> None:
    enc, pred = encoder(), predictor()
    save_model(enc, tmp_path / "encoder.safetensors", data={"frames": 10}, training={"steps": 3})
    save_model(pred, tmp_path / "predictor.safetensors")
    enc2, card = load_ours(tmp_path / "encoder.safetensors")
    assert card["kind"] == "encoder" and card["data"] == {"frames": 10} and card["config"]["dim"] == 96
    same_encoder_outputs(enc, enc2)
    same_predictor_outputs(pred, load_predictor(tmp_path / "predictor.safetensors"))
    same_encoder_outputs(enc, load_encoder(tmp_path / "encoder.safetensors", "micro"))
    with pytest.raises(CheckpointError, match="holds a predictor"):
        load_encoder(tmp_path / "predictor.safetensors")
    with pytest.raises(CheckpointError, match="differs"):
        load_encoder(tmp_path / "encoder.safetensors", "tiny")


def test_ours_sha256_verified(tmp_path: Path) -> None:
    path = tmp_path / "encoder.safetensors"
    save_model(encoder(), path)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256"):
        read_card(path)


def test_ours_card_with_unknown_config_field(tmp_path: Path) -> None:
    path = tmp_path / "encoder.safetensors"
    card_file = save_model(encoder(), path)
    card = json.loads(card_file.read_text())
    card["config"]["wings"] = 2
    card_file.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="wings"):
        load_ours(path)


def test_reference_checkpoint_with_prefixes_and_pos_embed(tmp_path: Path) -> None:
    enc, pred = encoder(1), predictor(2)
    ckpt = {
        "encoder": {f"module.{k}": v for k, v in encoder(3).state_dict().items()},
        "target_encoder": {f"module.backbone.{k}": v for k, v in enc.state_dict().items()}
        | {"module.backbone.pos_embed": torch.zeros(1, 64, 96)},
        "predictor": {f"module.{k}": v for k, v in pred.state_dict().items()},
        "opt": {"state": {}}, "epoch": 3, "lr": 1e-4,
    }
    torch.save(ckpt, tmp_path / "vit.pt")
    same_encoder_outputs(enc, load_encoder(tmp_path / "vit.pt", "micro"))  # target_encoder first
    same_encoder_outputs(encoder(3), load_encoder(tmp_path / "vit.pt", "micro", entry="encoder"))
    same_predictor_outputs(pred, load_predictor(tmp_path / "vit.pt", "micro"))
    with pytest.raises(CheckpointError, match="records no config"):
        load_encoder(tmp_path / "vit.pt")
    with pytest.raises(CheckpointError, match="no state-dict entry 'ema'"):
        load_encoder(tmp_path / "vit.pt", "micro", entry="ema")


def test_huggingface_safetensors(tmp_path: Path) -> None:
    enc = encoder(4)
    hf = {}
    for k, v in enc.state_dict().items():
        k = k.replace("patch_embed.", "encoder.embeddings.patch_embeddings.")
        k = k.replace("blocks.", "encoder.layer.")
        k = k.replace("attn.", "attention.")
        k = "encoder.layernorm." + k.removeprefix("norm.") if k.startswith("norm.") else k
        if ".qkv." in k:
            for name, part in zip(("query", "key", "value"), v.chunk(3, dim=0), strict=True):
                hf[k.replace("qkv", name)] = part.contiguous()
        else:
            hf[k] = v
    hf["predictor.layer.0.norm1.weight"] = torch.ones(4)  # the pretraining predictor: skipped
    save_file(hf, str(tmp_path / "model.safetensors"))
    same_encoder_outputs(enc, load_encoder(tmp_path / "model.safetensors", "micro"))
    with pytest.raises(CheckpointError, match="no AC predictor"):
        load_predictor(tmp_path / "model.safetensors", "micro")
    del hf["encoder.layer.1.attention.value.bias"]
    save_file(hf, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError, match=r"blocks\.1\.attn\.qkv\.bias needs query, key and value"):
        load_encoder(tmp_path / "broken.safetensors", "micro")


def test_strict_errors_name_every_key() -> None:
    state = encoder().state_dict()
    state.pop("norm.bias")
    state["blocks.0.attn.qkv.weight"] = torch.zeros(10, 96)
    state["head.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_strict(encoder(), state, "my.pt")
    msg = str(err.value)
    assert "my.pt" in msg and "missing key(s): norm.bias" in msg and "unexpected key(s): head.weight" in msg
    assert "blocks.0.attn.qkv.weight: expected (288, 96), found (10, 96)" in msg


def test_wrong_size_config_is_a_shape_error(tmp_path: Path) -> None:
    torch.save({"target_encoder": encoder().state_dict()}, tmp_path / "vit.pt")
    with pytest.raises(CheckpointError, match=r"patch_embed\.proj\.weight: expected \(192, 3, 2, 8, 8\), "
                                              r"found \(96, 3, 2, 8, 8\)"):
        load_encoder(tmp_path / "vit.pt", "tiny")


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_runs_nothing(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"target_encoder": encoder().state_dict(), "extra": Exploit(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_encoder(path, "micro")
    assert not marker.exists()
    Exploit(marker).__reduce__()[0](*Exploit(marker).__reduce__()[1])  # the payload is real: it does run
    assert marker.exists()


def test_missing_file() -> None:
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_encoder("/nonexistent/vitg.pt", "vit_giant")
