"""Checkpoints in every format, written here with random weights, load back into identical outputs;
every way a file can be wrong is a clear error; pickles never run code."""

from __future__ import annotations

import hashlib
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


def transformers_names(enc: VisionTransformer, prefix: str = "") -> dict[str, torch.Tensor]:
    """The encoder's weights under the names transformers' V-JEPA 2 conversion writes
    (models/vjepa2/convert_vjepa2_to_hf.py: VJEPA2Model's `encoder.*`; `vjepa2.encoder.*` in
    VJEPA2ForVideoClassification), q, k and v as three Linear layers."""
    ours = enc.state_dict()
    hf = {}
    for p in ("weight", "bias"):
        hf[f"encoder.embeddings.patch_embeddings.proj.{p}"] = ours[f"patch_embed.proj.{p}"]
        hf[f"encoder.layernorm.{p}"] = ours[f"norm.{p}"]
        for i in range(enc.config.depth):
            block, layer = f"blocks.{i}", f"encoder.layer.{i}"
            query, key, value = ours[f"{block}.attn.qkv.{p}"].chunk(3, dim=0)
            hf[f"{layer}.attention.query.{p}"] = query.contiguous()
            hf[f"{layer}.attention.key.{p}"] = key.contiguous()
            hf[f"{layer}.attention.value.{p}"] = value.contiguous()
            hf[f"{layer}.attention.proj.{p}"] = ours[f"{block}.attn.proj.{p}"]
            for ln in ("norm1", "norm2"):
                hf[f"{layer}.{ln}.{p}"] = ours[f"{block}.{ln}.{p}"]
            for fc in ("fc1", "fc2"):
                hf[f"{layer}.mlp.{fc}.{p}"] = ours[f"{block}.mlp.{fc}.{p}"]
    assert sum(v.numel() for v in hf.values()) == sum(v.numel() for v in ours.values())  # nothing left out
    return {prefix + k: v for k, v in hf.items()}


# VJEPA2Config's fields for the micro encoder, as `save_pretrained` writes them into config.json.
MICRO_HF_CONFIG = {"model_type": "vjepa2", "crop_size": 64, "patch_size": 8, "tubelet_size": 2, "in_chans": 3,
                   "hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_ratio": 4.0,
                   "layer_norm_eps": 1e-6, "qkv_bias": True, "frames_per_clip": 64, "pred_hidden_size": 384}


def test_huggingface_safetensors(tmp_path: Path) -> None:
    enc = encoder(4)
    hf = transformers_names(enc)
    hf["predictor.layer.0.norm1.weight"] = torch.ones(4)  # the pretraining predictor: skipped
    save_file(hf, str(tmp_path / "model.safetensors"))
    same_encoder_outputs(enc, load_encoder(tmp_path / "model.safetensors", "micro"))
    with pytest.raises(CheckpointError, match="no AC predictor"):
        load_predictor(tmp_path / "model.safetensors", "micro")
    del hf["encoder.layer.1.attention.value.bias"]
    save_file(hf, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError, match=r"blocks\.1\.attn\.qkv\.bias needs query, key and value"):
        load_encoder(tmp_path / "broken.safetensors", "micro")


def test_huggingface_classification_model(tmp_path: Path) -> None:
    enc = encoder(5)
    hf = transformers_names(enc, prefix="vjepa2.")
    hf |= {"pooler.query_tokens": torch.zeros(1, 1, 96), "classifier.weight": torch.zeros(10, 96)}
    save_file(hf, str(tmp_path / "model.safetensors"))
    same_encoder_outputs(enc, load_encoder(tmp_path / "model.safetensors", "micro"))


def test_huggingface_size_from_config_json(tmp_path: Path) -> None:
    enc = encoder(6)
    save_file(transformers_names(enc), str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="records no config"):
        load_encoder(tmp_path / "model.safetensors")  # no config.json: the size must be given
    (tmp_path / "config.json").write_text(json.dumps(MICRO_HF_CONFIG))
    same_encoder_outputs(enc, load_encoder(tmp_path / "model.safetensors"))  # the size from config.json
    same_encoder_outputs(enc, load_encoder(tmp_path, "micro"))  # the folder save_pretrained wrote
    with pytest.raises(CheckpointError, match="config.json beside it states"):
        load_encoder(tmp_path / "model.safetensors", "tiny")


def test_huggingface_sharded_checkpoint(tmp_path: Path) -> None:
    enc = encoder(7)
    hf = transformers_names(enc)
    names = sorted(hf)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: hf[k] for k in keys}, str(tmp_path / file))
    index = {"metadata": {"total_size": 0}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text(json.dumps(MICRO_HF_CONFIG))
    same_encoder_outputs(enc, load_encoder(tmp_path / "model.safetensors.index.json"))
    same_encoder_outputs(enc, load_encoder(tmp_path))
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"1 of its 2 shards are missing \(model-00002-of-00002"):
        load_encoder(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(CheckpointError, match="weight_map"):
        load_encoder(tmp_path)


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


def _damaged(tmp_path: Path, how: str) -> tuple[Path, str | None]:
    """A checkpoint damaged one way, and the config to ask for (None: the card says)."""
    path = tmp_path / "encoder.safetensors"
    save_model(encoder(), path)
    data = path.read_bytes()
    if how == "truncated, card":
        path.write_bytes(data[: len(data) // 2])
        card = json.loads(path.with_suffix(".json").read_text())
        card["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # the card agrees
        path.with_suffix(".json").write_text(json.dumps(card))
        return path, None
    if how == "truncated, no card":
        path.with_suffix(".json").unlink()
        path.write_bytes(data[: len(data) // 2])
        return path, "micro"
    if how == "header only":
        path.with_suffix(".json").unlink()
        path.write_bytes(data[:6])
        return path, "micro"
    if how == "card not JSON":
        path.with_suffix(".json").write_text('{"format": "ami-robot/v1", "kind": ')
        return tmp_path / "encoder.json", None
    if how == "text as .pt":
        text = tmp_path / "encoder.pt"
        text.write_text("these are not weights\n")
        return text, "micro"
    if how == "empty .pt":
        empty = tmp_path / "encoder.pt"
        empty.write_bytes(b"")
        return empty, "micro"
    if how == "truncated .pt":
        pt = tmp_path / "encoder.pt"
        torch.save({"target_encoder": encoder().state_dict()}, pt)
        pt.write_bytes(pt.read_bytes()[:1000])
        return pt, "micro"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated, card", "truncated, no card", "header only", "card not JSON",
                                 "text as .pt", "empty .pt", "truncated .pt"])
def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path, how: str) -> None:
    path, config = _damaged(tmp_path, how)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path.with_suffix(".safetensors") if path.suffix == ".json" else path, config)
    assert str(path) in str(err.value), err.value
    assert "KeyError: 101" not in str(err.value) and "refused to unpickle" not in str(err.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("fmt", ["ours", "reference .pt"])
def test_non_finite_weights_are_refused_by_name(tmp_path: Path, value: float, fmt: str) -> None:
    model = encoder()
    state = model.state_dict()
    name = "blocks.1.mlp.fc1.weight"
    state[name] = state[name].clone()
    state[name][3, 4] = value
    model.load_state_dict(state)
    if fmt == "ours":
        path = tmp_path / "encoder.safetensors"
        save_model(model, path)  # a valid card: its sha256 is the file's
        load = lambda: load_ours(path)  # noqa: E731
    else:
        path = tmp_path / "vitl.pt"
        torch.save({"target_encoder": state}, path)
        load = lambda: load_encoder(path, "micro")  # noqa: E731
    with pytest.raises(CheckpointError, match=rf"{name}.*1 non-finite"):
        load()
