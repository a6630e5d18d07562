"""`ami-robot collect | train-encoder | train-predictor | reproduce`: data and training."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from ami_robot.apps.common import AppError, build_dataclass, build_world_model, output_dir, structured
from ami_robot.apps.schemas import (
    CollectArgs,
    LocatorArgs,
    MemoryArgs,
    ReproduceArgs,
    TrainEncoderArgs,
    TrainPredictorArgs,
    TrainSubgoalsArgs,
    app_args,
)
from ami_robot.data.collection import CollectConfig, collect
from ami_robot.data.lerobot_io import LeRobotError, is_lerobot_dataset
from ami_robot.data.shards import ShardError
from ami_robot.hub import load_part
from ami_robot.policies.subgoals import world_model_sha256
from ami_robot.train.locator import LocatorTrainConfig, build_locator
from ami_robot.train.memory import build_memory
from ami_robot.train.pipeline import ReproduceConfig, reproduce
from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder
from ami_robot.train.subgoals import (
    SubgoalTrainConfig,
    collect_subgoal_latents,
    export_subgoal_maker,
    train_subgoal_maker,
)
from ami_robot.train.train_predictor import PredictorTrainConfig, train_predictor
from ami_robot.weights import CheckpointError, save_model

# The trainers' dataclasses as Hydra schemas (group `schema`), so every field shows in `--cfg job`
# and overrides like `pretrain.steps=3000` work without a `+`, type-checked by OmegaConf.
_SCHEMAS = {"pretrain": PretrainConfig, "predictor": PredictorTrainConfig, "reproduce": ReproduceConfig}
for _name, _cls in _SCHEMAS.items():
    ConfigStore.instance().store(group="schema", name=_name, node=structured(_cls))


def run_collect(cfg: DictConfig) -> None:
    args = app_args(cfg, CollectArgs, "collect")
    config = build_dataclass(CollectConfig, cfg.collect, "collect")
    with _strict_data_errors():
        stats = collect(config, progress=True, out_format=args.format)
    print(f"{stats.collected} episodes collected ({stats.already} already there), {stats.frames} frames "
          f"in {stats.seconds:.0f} s ({stats.frames_per_s:.0f} frames/s) -> {config.out_dir}")


def run_train_encoder(cfg: DictConfig) -> None:
    args = app_args(cfg, TrainEncoderArgs, "train-encoder")
    out = Path(args.out_dir) if args.out_dir else output_dir()
    config = build_dataclass(PretrainConfig, cfg.pretrain, "pretrain")
    with _strict_data_errors():
        result = pretrain_encoder(config, args.data_dir, out, device=args.device,
                                  strict_data=args.strict_data)
    path = save_model(result["target_encoder"], out / "encoder.safetensors", data=result["data"],
                      training={"steps": result["steps"], "wall_s": round(result["wall_s"], 1),
                                "settings": dataclasses.asdict(config)})
    _report_skipped(result["data"])
    print(f"encoder written to {path.with_suffix('.safetensors')} (card {path})")


def run_train_predictor(cfg: DictConfig) -> None:
    args = app_args(cfg, TrainPredictorArgs, "train-predictor")
    out = Path(args.out_dir) if args.out_dir else output_dir()
    config = build_dataclass(PredictorTrainConfig, cfg.predictor, "predictor")
    try:
        encoder = load_part(args.encoder, "encoder")  # a hub folder's encoder.*, or encoder.safetensors
    except (CheckpointError, FileNotFoundError) as exc:
        raise AppError(f"cannot load the encoder {args.encoder}: {exc}") from None
    folders = [("data_dir", args.data_dir)] + [(f"extra_data[{k}]", d) for k, d in enumerate(args.extra_data)]
    for key, folder in folders:
        if not (Path(folder) / "manifest.json").is_file() and not is_lerobot_dataset(folder):
            raise AppError(f"{key}={folder} holds no dataset (no manifest.json, no LeRobot meta/info.json); "
                           "collect one with `ami-robot collect`, or fix the path")
    with _strict_data_errors():
        try:
            result = train_predictor(config, [d for _, d in folders], encoder, out, device=args.device,
                                     strict_data=args.strict_data)
        except ValueError as exc:  # folders that cannot be one dataset, a predictor that does not fit
            raise AppError(f"train-predictor: {exc}") from None
    path = save_model(result["predictor"], out / "predictor.safetensors", data=result["data"],
                      training={"steps": result["steps"], "wall_s": round(result["wall_s"], 1),
                                "settings": dataclasses.asdict(config)})  # init_from, lr, autocast, ...
    _report_skipped(result["data"])
    print(f"predictor written to {path.with_suffix('.safetensors')} (card {path})")


@contextlib.contextmanager
def _strict_data_errors(key: str = "strict_data") -> Iterator[None]:
    """A damaged shard under strict_data=true: one line naming it and both ways out; a LeRobot
    dataset that does not fit (or no lerobot installed): the message, which says what was expected."""
    try:
        yield
    except ShardError as exc:
        raise AppError(f"{exc} ({key}=true; {key}=false trains on the rest and records what it "
                       "skipped in the model card)") from None
    except LeRobotError as exc:
        raise AppError(str(exc)) from None


def _report_skipped(usage: dict[str, Any]) -> None:
    if usage["shards_skipped"] or usage["repeated_episodes_skipped"]:
        repeats = len(usage["repeated_episodes_skipped"])
        print(f"trained on {usage['episodes_used']} episodes; skipped {len(usage['shards_skipped'])} damaged "
              f"shard(s) ({usage['episodes_skipped']} episodes) and {repeats} repeated episode(s), all "
              "listed in the card's `data`")


def run_reproduce(cfg: DictConfig) -> None:
    app_args(cfg, ReproduceArgs, "reproduce")
    config = build_dataclass(ReproduceConfig, cfg.reproduce, "reproduce")
    with _strict_data_errors("reproduce.strict_data"):
        stages = reproduce(config, progress=True)
    print(json.dumps({k: v for k, v in stages.items() if k in ("probe", "prediction", "export")}, indent=2))


def _model_and_output(cfg: DictConfig, name: str) -> tuple[Any, dict[str, Any], Path]:
    """The world model `cfg.model` names, its record for a card, and where an artefact made from
    it goes: `cfg.out`, else `name` in the folder the model was loaded from (where the retrieval
    policy looks for it). A random or reference model has no such folder: it needs `out=`, so that
    nothing made from it can replace the shipped files."""
    world_model, record = build_world_model(cfg.model)
    if record["kind"] == "checkpoint" and not cfg.model.get("path"):
        shipped = cfg.model.get("shipped")
        record = {**record, "path": f"shipped (ami_robot/checkpoints{'/' + shipped if shipped else ''})"}
    if cfg.out:
        return world_model, record, Path(cfg.out)
    if world_model.checkpoint_dir is None:
        stem = name.split(".")[0]
        raise AppError(f"model={record['kind']} has no checkpoint folder to write {name} into; set "
                       f"out=PATH/{name} (and give it to the retrieval policy as policy.{stem}=PATH/{name})")
    return world_model, record, world_model.checkpoint_dir / name


def run_memory(cfg: DictConfig) -> None:
    app_args(cfg, MemoryArgs, "memory")
    data_dir = Path(cfg.data_dir)
    if not (data_dir / "manifest.json").is_file():
        raise AppError(f"no training shards at {data_dir} (no manifest.json); collect them with "
                       "`ami-robot collect` or `ami-robot reproduce`, or set data_dir=")
    world_model, record, out = _model_and_output(cfg, "memory.safetensors")
    memory = build_memory(world_model, data_dir, out, meta={"model": record})
    print(f"memory of {memory.keys.shape[0]} frames ({len(memory.starts)} episodes) written to {out}")


def run_locator(cfg: DictConfig) -> None:
    app_args(cfg, LocatorArgs, "locator")
    for name in ("data_dir", "val_dir"):
        if not (Path(cfg[name]) / "manifest.json").is_file():
            raise AppError(f"no shards at {cfg[name]} (no manifest.json); collect them with "
                           f"`ami-robot collect` or `ami-robot reproduce`, or set {name}=")
    training = build_dataclass(LocatorTrainConfig, cfg.training, "training")
    world_model, record, out = _model_and_output(cfg, "locator.safetensors")
    locator = build_locator(world_model, cfg.data_dir, cfg.val_dir, out, training, meta={"model": record})
    print(json.dumps({k: locator.card[k] for k in ("recorded", "recoloured")}, indent=2))
    print(f"locator written to {out}")


def run_train_subgoals(cfg: DictConfig) -> None:
    """Latents of training resets, then the maker; both resume from the run folder."""
    args = app_args(cfg, TrainSubgoalsArgs, "train-subgoals")
    training = build_dataclass(SubgoalTrainConfig, cfg.training, "training")
    if not 0 < training.held_out < args.seeds:
        raise AppError(f"training.held_out={training.held_out}: hold out 1 to {args.seeds - 1} of the "
                       f"seeds={args.seeds} resets")
    world_model, record, out = _model_and_output(cfg, f"subgoals_{args.task}.safetensors")
    run = output_dir()
    path = run / f"{args.task}_latents.pt"
    if path.exists():
        import torch

        data = torch.load(path, weights_only=False)
        if data["task"] != args.task or len(data["z_start"]) != args.seeds:
            raise AppError(f"{path} holds {len(data['z_start'])} {data['task']} resets, not "
                           f"{args.seeds} {args.task}: resume with the same task and seeds, or choose "
                           "another hydra.run.dir")
        print(f"latents of {args.seeds} resets already in {path}")
    else:
        try:
            data = collect_subgoal_latents(world_model, args.task, args.seeds, path)
        except ValueError as exc:
            raise AppError(f"task={args.task}: {exc}") from None
    maker, state = train_subgoal_maker(data, run / f"{args.task}_maker.pt", training)
    card = export_subgoal_maker(maker, state, out, world_model_sha256(world_model),
                                made_by=f"ami-robot train-subgoals task={args.task} seeds={args.seeds}")
    print(json.dumps({"task": args.task, "model": record, "held_out_l1": card["held_out_l1"]}, indent=2))
    print(f"sub-goal maker written to {out}")
