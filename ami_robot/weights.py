"""Checkpoint files in, state dicts and models out: reference .pt, HuggingFace safetensors, ours.

- Reference (`vitl.pt`, `vitg.pt`, `vjepa2-ac-vitg.pt`, training checkpoints): a torch pickle
  holding entries such as `encoder`, `target_encoder`, `predictor`; keys may carry `module.` or
  `module.backbone.` prefixes and a stray `pos_embed` (unused with RoPE). Opened with
  `weights_only=True` only: a pickle that wants to run code is refused, not run.
- HuggingFace (`facebook/vjepa2-*`, safetensors, one file or shards with their
  `model.safetensors.index.json`): `encoder.layer.{i}.attention.{query,key,value}` and friends,
  mapped to our names with q, k, v fused into `qkv`; the size comes from the `config.json` beside
  them. Its pretraining predictor (`predictor.*`) is not the AC predictor and is skipped, and the
  log says so.
- Ours: `<name>.safetensors` plus a model card `<name>.json` beside it (kind, config, data,
  training, and the sha256 of the safetensors file, verified on load).

Loading is always strict: missing keys, unexpected keys and every shape mismatch are reported
together in one `CheckpointError` naming the keys and the expected and found shapes; a tensor
holding NaN or inf is refused by name; a file that cannot be read (truncated, not a checkpoint,
a card that is not JSON) is a `CheckpointError` naming that file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ami_robot.models import (
    ENCODER_CONFIGS,
    PREDICTOR_CONFIGS,
    ACPredictor,
    EncoderConfig,
    PredictorConfig,
    VisionTransformer,
)
from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker

log = logging.getLogger(__name__)

CARD_FORMAT = "ami-robot/v1"
REFERENCE_PREFIXES = ("module.backbone.", "module.", "backbone.")  # longest first
HF_SKIPPED_PREFIXES = ("predictor.", "pooler.", "classifier.")  # not part of the V-JEPA 2 encoder
HF_INDEX = "model.safetensors.index.json"  # a sharded HF checkpoint: tensor name -> shard file
KINDS: dict[str, tuple[type, type, dict]] = {
    "encoder": (VisionTransformer, EncoderConfig, ENCODER_CONFIGS),
    "predictor": (ACPredictor, PredictorConfig, PREDICTOR_CONFIGS),
}
StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded as asked; the message says what is wrong."""


# ----------------------------------------------------------------------------- reading files

TORCH_MAGICS = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; a legacy pickle (protocol >= 2)


def load_safetensors(path: str | Path) -> StateDict:
    """Every tensor of a .safetensors file, on CPU; a damaged file is a CheckpointError naming it."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); it is truncated or "
                              "damaged: download or write it again") from err


def read_json(path: str | Path) -> Any:
    """A JSON file (model card, config.json, shard index); bad JSON is a CheckpointError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); restore or rewrite that file") from err


def read_tensors(path: str | Path) -> StateDict | dict[str, Any]:
    """The raw contents of a .safetensors file or a torch pickle (weights_only=True, on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(TORCH_MAGICS):
        # Checked first: torch's own message for a text file is `KeyError: 101`.
        raise CheckpointError(f"{path} is not a torch checkpoint (it starts with {head!r}, neither the zip "
                              "archive torch.save writes nor a pickle); give a .pt written by torch.save, "
                              "a .safetensors file, or a HuggingFace checkpoint folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err) and "GLOBAL" not in str(err):
            raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or damaged?): "
                                  f"{str(err).splitlines()[-1] if str(err) else err!r}") from err
        raise CheckpointError(
            f"{path}: refused to unpickle. Only tensors and plain containers may be loaded "
            f"(torch.load(weights_only=True)); this file asks to build other objects or call "
            f"functions, which could run arbitrary code. Details: {err}") from err
    except (RuntimeError, EOFError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or damaged?): "
                              f"{err!r}") from err


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict with a NaN or inf anywhere, naming the first such tensor: such weights
    load fine and fail only at the first plan (`cost_fn returned no finite cost`)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            bad = ~torch.isfinite(value)
            if bad.any():
                n_nan = int(torch.isnan(value).sum())
                raise CheckpointError(
                    f"{source}: tensor {key!r} {tuple(value.shape)} holds {int(bad.sum())} non-finite "
                    f"value(s) ({n_nan} NaN, {int(bad.sum()) - n_nan} inf); the weights are damaged "
                    "(a diverged training run?): retrain, or use a checkpoint from before it diverged")


def strip_prefixes(state: StateDict) -> StateDict:
    """Drop the DDP / pretraining wrappers' key prefixes (`module.`, `module.backbone.`)."""
    out = {}
    for key, value in state.items():
        for prefix in REFERENCE_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if key in out:
            raise CheckpointError(f"two keys become {key!r} once their prefixes are stripped")
        out[key] = value
    return out


def reference_state_dict(path: str | Path, entry: str | None = None) -> StateDict:
    """One model's state dict from a reference .pt checkpoint, prefixes stripped.

    entry: `encoder`, `target_encoder` or `predictor`; None takes `target_encoder` if present,
    else `encoder` (the released pretrained files and the AC file respectively), and a file that
    is already a bare state dict as it is.
    """
    obj = read_tensors(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        if entry is not None:
            raise CheckpointError(f"{path} is a bare state dict; it has no entry {entry!r}")
        return strip_prefixes(obj)
    if entry is None:
        entry = next((e for e in ("target_encoder", "encoder") if e in obj), None)
        if entry is None:
            raise CheckpointError(f"{path}: no `target_encoder` or `encoder` entry; entries: {sorted(obj)}")
        log.info("%s: using entry %r", path, entry)
    if entry not in obj or not isinstance(obj[entry], dict):
        raise CheckpointError(f"{path}: no state-dict entry {entry!r}; entries: {sorted(obj)}")
    return strip_prefixes(obj[entry])


def hf_files(path: str | Path) -> list[Path] | None:
    """The safetensors file(s) of a HuggingFace checkpoint, or None if `path` is not one. `path` is
    a `.safetensors` file, a sharded checkpoint's `model.safetensors.index.json`, or the folder
    `save_pretrained` wrote (holding either)."""
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in (HF_INDEX, "model.safetensors") if (path / n).is_file()]
        path = found[0] if found else path / HF_INDEX
    if path.name.endswith(".index.json"):
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path} (neither it nor model.safetensors is there)")
        index = read_json(path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{path}: a sharded checkpoint's index needs a `weight_map` "
                                  "(tensor name -> shard file)")
        shards = [path.parent / name for name in sorted(set(weight_map.values()))]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(f"{path}: {len(missing)} of its {len(shards)} shards are missing "
                                  f"({', '.join(missing)}); download every file the index names")
        return shards
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            is_hf = any(k.removeprefix("vjepa2.").startswith("encoder.") for k in f.keys())
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); it is truncated or "
                              "damaged: download or write it again") from err
    return [path] if is_hf else None


def hf_state_dict(path: str | Path) -> StateDict:
    """A HuggingFace V-JEPA 2 checkpoint's encoder weights (every shard) under the reference names.

    transformers names them `encoder.embeddings.patch_embeddings.proj`, `encoder.layer.{i}.norm1`,
    `.attention.{query,key,value,proj}`, `.norm2`, `.mlp.fc{1,2}` and `encoder.layernorm`, under
    `vjepa2.` in the video-classification model; q, k and v are fused into our `qkv`.
    """
    files = hf_files(path)
    if files is None:
        raise CheckpointError(f"{path} is not a HuggingFace V-JEPA 2 checkpoint (no `encoder.*` tensors)")
    out: StateDict = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    skipped = []
    for key, value in (item for f in files for item in read_tensors(f).items()):
        key = key.removeprefix("vjepa2.")  # the video-classification wrapper
        if key.startswith(HF_SKIPPED_PREFIXES):
            skipped.append(key)
            continue
        new = key.replace("encoder.embeddings.patch_embeddings.", "patch_embed.")
        new = new.replace("encoder.layernorm.", "norm.").replace("encoder.layer.", "blocks.")
        new = new.replace(".attention.", ".attn.")
        for part in ("query", "key", "value"):
            if f".attn.{part}." in new:
                stem, suffix = new.split(f".attn.{part}.")
                qkv.setdefault(f"{stem}.attn.qkv.{suffix}", {})[part] = value
                break
        else:
            out[new] = value  # unknown names stay as they are and fail the strict load by name
    for key, parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise CheckpointError(f"{path}: {key} needs query, key and value; found only {sorted(parts)}")
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)  # [q | k | v]
    if skipped:
        log.info("%s: skipped %d keys outside the encoder (%s...)", path, len(skipped), skipped[0])
    return out


def hf_encoder_config(path: str | Path) -> EncoderConfig | None:
    """The encoder size a HuggingFace `config.json` beside the weights states (VJEPA2Config's
    fields, with its defaults), or None when there is none."""
    path = Path(path)
    file = (path if path.is_dir() else path.parent) / "config.json"
    if not file.is_file():
        return None
    c = read_json(file)
    if not isinstance(c, dict):
        raise CheckpointError(f"{file}: expected a JSON object (a transformers config), "
                              f"found {type(c).__name__}")
    if c.get("model_type") not in (None, "vjepa2") or not c.get("qkv_bias", True):
        raise CheckpointError(f"{file} describes a {c.get('model_type')!r} model (qkv_bias "
                              f"{c.get('qkv_bias', True)}), not a V-JEPA 2 encoder with q, k, v biases")
    hidden = int(c.get("hidden_size", 1024))
    try:
        return EncoderConfig(img_size=int(c.get("crop_size", 256)), patch_size=int(c.get("patch_size", 16)),
                             tubelet_size=int(c.get("tubelet_size", 2)), in_chans=int(c.get("in_chans", 3)),
                             dim=hidden, depth=int(c.get("num_hidden_layers", 24)),
                             heads=int(c.get("num_attention_heads", 16)),
                             mlp_dim=int(hidden * float(c.get("mlp_ratio", 4.0))),  # as transformers sizes it
                             eps=float(c.get("layer_norm_eps", 1e-6)))
    except ValueError as err:
        raise CheckpointError(f"{file}: {err}") from err


# ----------------------------------------------------------------------------- strict loading

def load_strict(module: nn.Module, state: StateDict, source: str = "checkpoint") -> None:
    """Copy state into module, or raise one CheckpointError listing every missing, unexpected and
    mis-shaped key (with expected and found shapes)."""
    own = module.state_dict()
    state = dict(state)
    if "pos_embed" in state and "pos_embed" not in own:
        log.info("%s: dropping the stray `pos_embed` (unused with RoPE)", source)
        state.pop("pos_embed")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"  {k}: expected {tuple(own[k].shape)}, found {tuple(state[k].shape)}"
              for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        lines = [f"{source} does not fit {type(module).__name__}:"]
        if missing:
            lines.append(f" {len(missing)} missing key(s): {', '.join(missing)}")
        if unexpected:
            lines.append(f" {len(unexpected)} unexpected key(s): {', '.join(unexpected)}")
        if shapes:
            lines.append(f" {len(shapes)} shape mismatch(es):")
            lines.extend(shapes)
        raise CheckpointError("\n".join(lines))
    check_finite(state, source)
    module.load_state_dict(state, strict=True)


def _config(kind: str, config: Any) -> Any:
    cls, config_cls, named = KINDS[kind]
    if isinstance(config, str):
        if config not in named:
            raise CheckpointError(f"unknown {kind} config {config!r}; choose from {sorted(named)}")
        return named[config]
    if not isinstance(config, config_cls):
        raise CheckpointError(f"a {kind} needs a {config_cls.__name__} or a config name, got {config!r}")
    return config


# ----------------------------------------------------------------------------- our format

def card_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_with_card(tensors: dict[str, torch.Tensor], path: str | Path, card: dict[str, Any],
                   metadata: dict[str, str]) -> dict[str, Any]:
    """Write `path` (.safetensors) and its JSON card beside it (`card` plus file name and sha256),
    each atomically (temp file + rename); returns the card as written. For the policy's own
    artefacts (memory, locator), whose `metadata["format"]` names the kind."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.chmod(0o644)
    tmp.replace(path)
    card = {"format": metadata["format"], "file": path.name, "sha256": sha256_file(path), **card}
    card_tmp = path.with_suffix(".json.tmp")
    card_tmp.write_text(json.dumps(card, indent=2) + "\n")
    card_tmp.replace(path.with_suffix(".json"))
    return card


def load_with_card(path: str | Path, format: str, kind: str, remake: tuple[str, str]) -> tuple[dict, dict]:
    """(tensors, card) of a file written by `save_with_card`, its sha256 checked against the card.
    `remake` says how to make it again: (missing-file advice, verb), e.g. ("rebuild it with
    `ami-robot memory` (or `ami-robot reproduce`)", "rebuild it")."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.exists() or not card_path.exists():
        raise FileNotFoundError(f"{path} or its card {card_path.name} is missing; {remake[0]}")
    card = read_json(card_path)
    if not isinstance(card, dict) or card.get("format") != format:
        raise ValueError(f"{card_path} is not an ami-robot {kind} card (format {card.get('format')!r})")
    digest = sha256_file(path)
    if digest != card.get("sha256"):
        raise ValueError(f"{path}: sha256 {digest[:16]}... does not match its card's "
                         f"{str(card.get('sha256'))[:16]}...; the file is corrupted or was replaced: "
                         f"{remake[1]}")
    tensors = load_safetensors(path)
    check_finite(tensors, str(path))
    return tensors, card


SUBGOAL_MAKER_FORMAT = "ami-robot/subgoal-maker-v1"


def save_subgoal_maker(maker: SubgoalMaker, path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write a trained SubgoalMaker and its card (config, task, moments, provenance, figures)."""
    tensors = {k: v.detach().contiguous() for k, v in maker.state_dict().items()}
    return save_with_card(tensors, path, {"config": dataclasses.asdict(maker.config), **card},
                          metadata={"format": SUBGOAL_MAKER_FORMAT})


def load_subgoal_maker(path: str | Path) -> tuple[SubgoalMaker, dict[str, Any]]:
    """(SubgoalMaker in eval mode, its card) from `save_subgoal_maker`'s file, sha256 checked."""
    remake = ("train one with `ami-robot train-subgoals task=<Task>`", "train it again")
    tensors, card = load_with_card(path, SUBGOAL_MAKER_FORMAT, "sub-goal maker", remake)
    maker = SubgoalMaker(SubgoalConfig(**card["config"]))
    load_strict(maker, tensors, str(path))
    return maker.eval().requires_grad_(False), card


def save_model(model: VisionTransformer | ACPredictor, path: str | Path, *, data: dict | None = None,
               training: dict | None = None, **extra: Any) -> Path:
    """Write `path` (.safetensors) and its model card `path.json`; returns the card's path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"our checkpoints end in .safetensors, got {path}")
    kind = "encoder" if isinstance(model, VisionTransformer) else "predictor"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    card = {"format": CARD_FORMAT, "kind": kind, "file": path.name, "sha256": sha256_file(path),
            "config": dataclasses.asdict(model.config), "data": data or {}, "training": training or {},
            **extra}
    card_path(path).write_text(json.dumps(card, indent=2) + "\n")
    return card_path(path)


def read_card(path: str | Path) -> dict:
    """The model card beside `path`, after checking the safetensors file's sha256 against it."""
    if Path(path).suffix not in (".safetensors", ".json"):
        raise CheckpointError(f"{path} is not one of our checkpoints: those are .safetensors files with a "
                              ".json model card beside them (a reference .pt loads with model=reference)")
    path, card_file = Path(path).with_suffix(".safetensors"), card_path(path)
    if not card_file.is_file():
        raise CheckpointError(f"no model card {card_file} beside {path}")
    card = read_json(card_file)
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or card.get("kind") not in KINDS:
        raise CheckpointError(f"{card_file}: not an {CARD_FORMAT} card for an encoder or predictor")
    found = sha256_file(path)
    if found != card.get("sha256"):
        raise CheckpointError(f"{path}: sha256 {found} does not match its card's {card.get('sha256')}; "
                              f"the file was changed or is not the one the card describes")
    return card


def load_ours(path: str | Path, kind: str | None = None) -> tuple[VisionTransformer | ACPredictor, dict]:
    """Model and card from our format; kind ("encoder" / "predictor") is checked if given."""
    card = read_card(path)
    if kind is not None and card["kind"] != kind:
        raise CheckpointError(f"{path} holds a {card['kind']}, not a {kind}")
    cls, config_cls, _ = KINDS[card["kind"]]
    try:
        config = config_cls(**card["config"])
    except TypeError as err:
        raise CheckpointError(f"{card_path(path)}: config does not fit {config_cls.__name__}: {err}") from err
    model = cls(config)
    load_strict(model, read_tensors(Path(path).with_suffix(".safetensors")), str(path))
    return model.eval(), card


# ----------------------------------------------------------------------------- any format

def load_state_dict(path: str | Path, kind: str, entry: str | None = None) -> tuple[StateDict, dict | None]:
    """A state dict under our names from any supported file, and its card (ours only)."""
    path = Path(path)
    if path.suffix == ".safetensors" and card_path(path).is_file():
        card = read_card(path)
        if card["kind"] != kind:
            raise CheckpointError(f"{path} holds a {card['kind']}, not a {kind}")
        return read_tensors(path), card
    if hf_files(path) is not None:
        if kind != "encoder":
            raise CheckpointError(f"{path} is a HuggingFace V-JEPA 2 file: it has no AC predictor")
        return hf_state_dict(path), None
    if path.suffix == ".safetensors":
        return strip_prefixes(read_tensors(path)), None
    if kind == "predictor" and entry is None:
        entry = "predictor"
    return reference_state_dict(path, entry), None


def load_model(path: str | Path, kind: str, config: Any = None, entry: str | None = None
               ) -> VisionTransformer | ACPredictor:
    """An encoder or predictor from any supported file, loaded strictly, in eval mode.

    config (a config or a config name) is required for reference files, which do not record one;
    for ours it defaults to the card's, for HuggingFace files to their `config.json` when there is
    one, and must equal it when given.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    state, card = load_state_dict(path, kind, entry)
    if card is not None:
        card_config = KINDS[kind][1](**card["config"])
        if config is not None and _config(kind, config) != card_config:
            raise CheckpointError(f"{path}: its card's config {card_config} differs from the one asked for")
        config = card_config
    elif kind == "encoder" and hf_files(path) is not None and (stated := hf_encoder_config(path)):
        if config is not None and _config(kind, config) != stated:
            raise CheckpointError(f"{path}: the config.json beside it states {stated}, not the "
                                  f"{_config(kind, config)} asked for")
        config = stated
    elif config is None:
        raise CheckpointError(f"{path} records no config: pass one (e.g. one of {sorted(KINDS[kind][2])})")
    model = KINDS[kind][0](_config(kind, config))
    load_strict(model, state, str(path))
    return model.eval()


def load_encoder(path: str | Path, config: EncoderConfig | str | None = None,
                 entry: str | None = None) -> VisionTransformer:
    """A V-JEPA 2 encoder from a reference .pt, a HuggingFace safetensors file or ours."""
    return load_model(path, "encoder", config, entry)


def load_predictor(path: str | Path, config: PredictorConfig | str | None = None,
                   entry: str | None = None) -> ACPredictor:
    """A V-JEPA 2-AC predictor from a reference .pt (entry `predictor`) or ours."""
    return load_model(path, "predictor", config, entry)
