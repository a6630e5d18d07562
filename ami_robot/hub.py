"""The hub layout of a world model: one folder, as a Hugging Face model repository would hold it.

    config.json        `format`, `encoder_config` and `predictor_config` (every field of EncoderConfig
                       and PredictorConfig), the sha256 of model.safetensors, and `provenance` (data,
                       training, recipes) when the card gives one
    model.safetensors  the encoder's tensors under `encoder.`, the predictor's under `predictor.`
                       (our parameter names, so the reference names stay)
    README.md          the model card: the hub's YAML front matter (library_name, license, tags, and
                       the evaluation figures under `model-index`, each metric with the command that
                       made it in its `args`) above the card's Markdown text

`WorldModel.save_pretrained(folder, card=Card(...))` and `WorldModel.from_pretrained(folder)` write and
read it through huggingface_hub's ModelHubMixin; this module holds what they and the apps share: the
names, the card, and the checked reading of the files. Artefacts made from the model (the retrieval
policy's memory.safetensors and locator.safetensors, each with its JSON card) sit beside these files.
Nothing here touches the network: a folder is read from disk or refused with the file and the fix named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult
from safetensors.torch import save as serialise

from ami_robot.models import ACPredictor, EncoderConfig, PredictorConfig, VisionTransformer
from ami_robot.weights import (
    CheckpointError,
    StateDict,
    load_ours,
    load_safetensors,
    load_strict,
    read_json,
    sha256_file,
)

HUB_FORMAT = "ami-robot/hub-v1"
CONFIG_NAME = "config.json"  # huggingface_hub.constants.CONFIG_NAME
WEIGHTS_NAME = "model.safetensors"  # huggingface_hub.constants.SAFETENSORS_SINGLE_FILE
CARD_NAME = "README.md"
PARTS = {"encoder": (VisionTransformer, EncoderConfig), "predictor": (ACPredictor, PredictorConfig)}
LIBRARY = {"library_name": "ami-robot", "license": "mit", "pipeline_tag": "robotics",
           "tags": ["robotics", "v-jepa-2", "v-jepa-2-ac", "world-model", "latent-planning", "mujoco"]}
# The front matter (`card_data`, YAML) over the card's text; huggingface_hub renders it with jinja2.
CARD_TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ text }}\n"
FIX = "restore the folder (git checkout checkpoints/, or copy it again) or write it again with " \
      "WorldModel.save_pretrained"


@dataclasses.dataclass(frozen=True)
class Metric:
    """One evaluation figure for the card's front matter (a `model-index` result), and the command
    that measured it."""

    task: str  # what was measured: a task ("Reach") or a diagnostic ("encoder linear probe")
    dataset: str  # on what, as an id: "ami_robot/Reach-v0", "ami_robot/play"
    split: str  # which part of it: "held-out seeds from 10000, held-out palette"
    type: str  # the metric's id: "success_rate", "r_squared", "latent_l1"
    value: float
    command: str  # the shell command that made the figure
    name: str = ""  # a longer label: "latent CEM 128 x 4: 48/50 (Wilson 87-99%)"

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ValueError(f"metric {self.task} / {self.type}: a figure needs the command that made it")


@dataclasses.dataclass(frozen=True)
class Card:
    """What a model card says beyond the configs: its Markdown text, its figures, and where the
    weights came from (kept in config.json)."""

    name: str = "ami-robot world model"  # the name its figures are filed under (model-index)
    text: str = ""  # Markdown, without front matter
    metrics: tuple[Metric, ...] = ()
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)  # data, training, recipes

    def eval_results(self) -> list[EvalResult] | None:
        """The metrics as huggingface_hub's EvalResults (the card's `model-index`); None if there are none."""
        return [EvalResult(task_type="robotics", task_name=m.task, dataset_type=m.dataset,
                           dataset_name=m.dataset, dataset_split=m.split, metric_type=m.type,
                           metric_value=m.value, metric_name=m.name or None,
                           metric_args={"command": m.command})
                for m in self.metrics] or None


# ----------------------------------------------------------------------------- writing

def tensors_of(model: torch.nn.Module) -> StateDict:
    """The world model's persistent tensors (`encoder.*`, `predictor.*`), on CPU and contiguous."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def weights_bytes(tensors: StateDict) -> bytes:
    """model.safetensors as bytes: deterministic (tensors in a fixed order, one metadata key: a second
    key's order would vary), so its sha256 is known before writing, and checked after."""
    return serialise(tensors, metadata={"format": "pt"})


def hub_config(encoder: EncoderConfig, predictor: PredictorConfig, weights: bytes,
               card: Card) -> dict[str, Any]:
    """config.json's contents for weights (the bytes of model.safetensors)."""
    config = {"format": HUB_FORMAT, "encoder_config": dataclasses.asdict(encoder),
              "predictor_config": dataclasses.asdict(predictor),
              "sha256": {WEIGHTS_NAME: hashlib.sha256(weights).hexdigest()}}
    return {**config, "provenance": card.provenance} if card.provenance else config


# ----------------------------------------------------------------------------- reading

def is_hub_folder(path: str | Path) -> bool:
    """True for a folder in the hub layout: config.json there, or model.safetensors without the per-file
    layout's encoder.safetensors. It loads with from_pretrained, whose errors name what is wrong."""
    path = Path(path)
    return path.is_dir() and ((path / CONFIG_NAME).exists() or (
        (path / WEIGHTS_NAME).exists() and not (path / "encoder.safetensors").exists()))


def check_folder(folder: str | Path) -> dict[str, Any]:
    """config.json of a hub folder, after checking it and model.safetensors' sha256 against it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder: a hub-style model is a folder holding "
                              f"{CONFIG_NAME}, {WEIGHTS_NAME} and {CARD_NAME}")
    config_file, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for file in (config_file, weights):
        if not file.is_file():
            raise CheckpointError(f"{file} is missing; {FIX}")
    config = read_json(config_file)
    if not isinstance(config, dict) or config.get("format") != HUB_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{config_file} is not an {HUB_FORMAT} config (format {found!r}); a "
                              "HuggingFace transformers V-JEPA 2 folder loads with model=reference")
    recorded = config.get("sha256")
    recorded = recorded.get(WEIGHTS_NAME) if isinstance(recorded, dict) else None
    found = sha256_file(weights)
    if found != recorded:
        raise CheckpointError(f"{weights}: sha256 {found[:16]}... does not match {config_file.name}'s "
                              f"{str(recorded)[:16]}...; the file is damaged or was replaced: {FIX}")
    return config


def read_parts(folder: str | Path) -> dict[str, torch.nn.Module]:
    """The encoder and predictor of a hub folder (checked by `check_folder`), each loaded strictly."""
    folder = Path(folder)
    config = check_folder(folder)
    tensors = load_safetensors(folder / WEIGHTS_NAME)
    stray = sorted(k for k in tensors if k.split(".")[0] not in PARTS)
    if stray:
        raise CheckpointError(f"{folder / WEIGHTS_NAME}: {len(stray)} tensor(s) outside encoder.* and "
                              f"predictor.*: {', '.join(stray[:5])}; {FIX}")
    parts = {}
    for kind, (cls, config_cls) in PARTS.items():
        try:
            part_config = config_cls(**config[f"{kind}_config"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{folder / CONFIG_NAME}: {kind}_config does not fit "
                                  f"{config_cls.__name__}: {err!r}; {FIX}") from err
        module = cls(part_config)
        state = {k.removeprefix(f"{kind}."): v for k, v in tensors.items() if k.startswith(f"{kind}.")}
        load_strict(module, state, f"{folder / WEIGHTS_NAME} ({kind}.*)")
        parts[kind] = module.eval()
    return parts


def load_part(path: str | Path, kind: str) -> VisionTransformer | ACPredictor:
    """The encoder or predictor at `path`: a hub folder (or its model.safetensors), else our per-file
    `<kind>.safetensors` with its JSON card (or the folder holding it). What `train-predictor
    encoder=` takes."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if is_hub_folder(folder) and (path == folder or path.name == WEIGHTS_NAME):
        return read_parts(folder)[kind]
    return load_ours(folder / f"{kind}.safetensors" if path.is_dir() else path, kind)[0]


# ----------------------------------------------------------------------------- from the per-file cards

def card_from_cards(folder: str | Path, name: str = "ami-robot world model", text: str | None = None,
                    metrics: tuple[Metric, ...] = ()) -> Card:
    """The card for a per-file folder (encoder.json and predictor.json, as `ami-robot reproduce` writes
    it) in the hub layout: the cards' probe and prediction figures as metrics (made by their recipe's
    command) followed by `metrics`, the cards minus their configs as provenance, and `text` (by default
    the folder's README.md)."""
    folder = Path(folder)
    cards = {kind: read_json(folder / f"{kind}.json") for kind in PARTS}
    made_by = {kind: (card.get("recipe") or {}).get("command", "ami-robot reproduce")
               for kind, card in cards.items()}
    found: list[Metric] = []
    val = (cards["encoder"].get("data") or {}).get("val") or {}
    split = (f"validation episodes (seeds {val['seed']} .. {val['seed'] + val['episodes'] - 1})"
             if val else "validation episodes")
    probe = (cards["encoder"].get("evaluation") or {}).get("probe")
    if probe:
        twin = probe["random_init"]["r2_mean"]
        found.append(Metric("encoder linear probe", "ami_robot/play", split, "r_squared",
                            probe["trained"]["r2_mean"], made_by["encoder"],
                            "mean R^2 of a ridge probe to TCP, gripper and object xyz "
                            f"(random-init twin {twin})"))
    l1 = (cards["predictor"].get("evaluation") or {}).get("prediction_l1_by_horizon")
    if l1:
        for h in sorted({0, min(3, len(l1["model"]) - 1), len(l1["model"]) - 1}):
            found.append(Metric(f"latent prediction, horizon {h + 1}", "ami_robot/play", split, "latent_l1",
                                l1["model"][h], made_by["predictor"],
                                f"autoregressive latent L1 at step {h + 1} (copy-last {l1['copy_last'][h]})"))
    if text is None:
        readme = folder / CARD_NAME
        text = strip_front_matter(readme.read_text()) if readme.is_file() else ""
    provenance = {kind: {k: v for k, v in card.items() if k not in ("config", "format", "kind")}
                  for kind, card in cards.items()}
    return Card(name=name, text=text, metrics=(*found, *metrics), provenance=provenance)


def strip_front_matter(text: str) -> str:
    """Markdown without a leading `---` YAML block."""
    return re.sub(r"\A---\n.*?\n---\n+", "", text, count=1, flags=re.S)
