"""One command from nothing to shipped checkpoints: collect, pretrain, probe, train, measure, export.

Every stage resumes: collection skips stored episodes, both trainers restart from their last
checkpoint, and finished stages are recorded in `stages.json`. The figures that decide whether
the models are worth shipping are measured here and written into the model cards:

    probe        linear probe R^2 (TCP, gripper, object position) from the frozen encoder, on
                 held-out episodes, beside the same probe on its random-init twin
    prediction   latent L1 at horizons 1..8 on held-out episodes beside "nothing moves"
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.data import load_trajectories
from ami_robot.data.collection import CollectConfig, collect
from ami_robot.models.encoder import VisionTransformer
from ami_robot.train.ac import encode_frames
from ami_robot.train.locator import LocatorTrainConfig, build_locator
from ami_robot.train.memory import build_memory
from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder
from ami_robot.train.probe import feature_spread, ridge_probe
from ami_robot.train.train_predictor import (
    PredictorTrainConfig,
    latents_for,
    prediction_error_by_horizon,
    train_predictor,
)
from ami_robot.weights import save_model
from ami_robot.world_model import WorldModel, pool_features

VALIDATION_SEED = 9_000  # validation episodes use seeds 9,000..9,999 (still the training split)


@dataclass(frozen=True)
class ReproduceConfig:
    out_dir: str = "runs/reproduce"  # data, training states and logs
    export_dir: str = "checkpoints"  # where encoder/predictor .safetensors and cards are written
    train_episodes: int = 800
    val_episodes: int = 60
    num_workers: int = 2
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    predictor: PredictorTrainConfig = field(default_factory=PredictorTrainConfig)
    locator: LocatorTrainConfig = field(default_factory=LocatorTrainConfig)
    device: str = "auto"
    strict_data: bool = True  # a damaged shard or repeated episode stops the run (shipped weights)

    def __post_init__(self) -> None:
        if self.train_episodes > VALIDATION_SEED:
            raise ValueError(f"train_episodes must be <= {VALIDATION_SEED}: seeds from {VALIDATION_SEED} "
                             "are the validation episodes")
        if self.val_episodes < 4:
            raise ValueError("val_episodes must be >= 4 (the probe splits them in halves)")


class Stages:
    """Which stages are done, with their results, in `stages.json` (rewritten atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def record(self, name: str, result: dict[str, Any]) -> None:
        self.done[name] = result
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done, indent=2, default=float) + "\n")
        tmp.replace(self.path)


def collect_config(cfg: ReproduceConfig, split: str) -> CollectConfig:
    episodes, seed = (cfg.train_episodes, 0) if split == "train" else (cfg.val_episodes, VALIDATION_SEED)
    return CollectConfig(out_dir=str(Path(cfg.out_dir) / "data" / split), episodes=episodes, seed=seed,
                         num_workers=cfg.num_workers)


PROBE_TARGETS = ("tcp_x", "tcp_y", "tcp_z", "gripper", "object_x", "object_y", "object_z")


def _probe_targets(data: Any, frames: np.ndarray) -> torch.Tensor:
    if "object_pos" not in data.extras:
        raise ValueError("the probe needs object positions (extras['object_pos']); recollect the data")
    y = np.concatenate([data.states[frames, :3], data.states[frames, 6:7], data.extras["object_pos"][frames]],
                       axis=1)
    return torch.from_numpy(y).double()  # (F, 7): TCP xyz, gripper, object xyz


@torch.no_grad()
def probe_encoder(encoder: VisionTransformer, train_dir: str | Path, val_dir: str | Path,
                  max_fit_frames: int = 8000, seed: int = 0, pooled: int = 4,
                  views: Sequence[int] | None = None, strict: bool = False) -> dict[str, Any]:
    """Linear probe from frozen pooled patch features (pooled x pooled) to (TCP xyz, gripper, object xyz).

    Fit on up to `max_fit_frames` frames of the training episodes (ridge strength chosen by
    episode-grouped cross-validation there), scored on every frame of the held-out validation
    episodes. A probe fit on a few validation episodes instead has too little data to separate
    encoders: every encoder then scores near zero. For data of several camera views, `views` picks
    which (indices, e.g. [1] for the wrist alone; default all); each is pooled on its own grid.
    strict: a damaged shard stops the probe instead of being skipped (load_trajectories).
    """
    train, val = load_trajectories(train_dir, strict=strict), load_trajectories(val_dir, strict=strict)
    picked = list(range(train.views)) if views is None else list(views)
    if not picked or any(not 0 <= v < train.views for v in picked):
        raise ValueError(f"views {views} must be indices below the data's {train.views} view(s)")
    rng = np.random.default_rng(seed)
    fit = np.arange(train.num_frames)
    if len(fit) > max_fit_frames:
        fit = np.sort(rng.choice(fit, max_fit_frames, replace=False))
    grid = (encoder.config.grid, encoder.config.grid)

    def latents(data: Any, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(data.frames[frames])  # (F, V*S, S, 3)
        x = x.unflatten(1, (data.views, -1))[:, picked].flatten(1, 2)  # only the picked views, stacked
        return encode_frames(encoder, x, views=len(picked)).float()  # (F, picked views * N, D)

    def features(z: torch.Tensor) -> torch.Tensor:
        per_view = z.unflatten(1, (len(picked), -1))  # (F, picked views, N, D)
        return torch.cat([pool_features(per_view[:, i], grid, pooled) for i in range(len(picked))], dim=1)

    owner = np.repeat(np.arange(train.num_episodes), train.lengths)[fit]  # episode of each fit frame
    scored = np.arange(val.num_frames)
    z_val = latents(val, scored)
    result = ridge_probe(features(latents(train, fit)), _probe_targets(train, fit), features(z_val),
                         _probe_targets(val, scored), lambdas=(1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3),
                         groups=torch.from_numpy(owner), folds=3)
    return {"r2": dict(zip(PROBE_TARGETS, [round(float(v), 4) for v in result["r2"]], strict=True)),
            "r2_mean": round(result["r2_mean"], 4), "feature_spread": round(feature_spread(z_val), 4),
            "fit_frames": int(len(fit)), "scored_frames": int(len(scored)), "lambda": result["lambda"]}


def reproduce(cfg: ReproduceConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage; returns the stage results and writes the checkpoints."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out / "stages.json")
    started = time.time()

    for split in ("train", "val"):
        name = f"collect_{split}"
        if name not in stages.done:
            stats = collect(collect_config(cfg, split), progress=progress)
            stages.record(name, {"episodes": stats.collected + stats.already, "seconds": stats.seconds,
                                 "frames": stats.frames, "success": stats.success})
    train_dir, val_dir = out / "data" / "train", out / "data" / "val"

    strict = cfg.strict_data
    enc_run = pretrain_encoder(cfg.pretrain, train_dir, out / "encoder", device=cfg.device, progress=progress,
                               strict_data=strict)
    encoder = enc_run["target_encoder"]
    if "probe" not in stages.done:
        torch.manual_seed(cfg.pretrain.seed)
        twin = VisionTransformer(cfg.pretrain.encoder_config)  # same architecture, left random
        stages.record("probe", {"trained": probe_encoder(encoder, train_dir, val_dir, strict=strict),
                                "random_init": probe_encoder(twin, train_dir, val_dir, strict=strict)})

    pred_run = train_predictor(cfg.predictor, train_dir, encoder, out / "predictor", device=cfg.device,
                               progress=progress, strict_data=strict)
    predictor = pred_run["predictor"].eval()
    if "prediction" not in stages.done:
        val = load_trajectories(val_dir, strict=strict)
        latents = latents_for(val, encoder, out / "predictor" / "val_latents.pt", progress)
        errors = prediction_error_by_horizon(predictor, val, latents, np.arange(val.num_episodes))
        stages.record("prediction", {k: [round(v, 5) for v in vs] for k, vs in errors.items()})

    machine = {"machine": platform.machine(), "cpus": torch.get_num_threads(), "device": enc_run["device"],
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    data_recipe = {"train": asdict(collect_config(cfg, "train")), "val": asdict(collect_config(cfg, "val")),
                   "collected": {k: stages.done[k] for k in ("collect_train", "collect_val")}}
    export = Path(cfg.export_dir)
    recipe = {"command": "ami-robot reproduce", "config": asdict(cfg)}
    save_model(encoder, export / "encoder.safetensors", data={**data_recipe, "used": enc_run["data"]},
               training={"config": asdict(cfg.pretrain), "steps": enc_run["steps"],
                         "wall_s": round(enc_run["wall_s"], 1), "frames": enc_run["frames"], **machine},
               evaluation={"probe": stages.done["probe"]}, recipe=recipe)
    save_model(predictor, export / "predictor.safetensors", data={**data_recipe, "used": pred_run["data"]},
               training={"config": asdict(cfg.predictor), "steps": pred_run["steps"],
                         "wall_s": round(pred_run["wall_s"], 1), "clips": pred_run["clips"], **machine},
               evaluation={"prediction_l1_by_horizon": stages.done["prediction"]}, recipe=recipe)
    # The retrieval policy's memory of the training frames, keyed by this encoder (train/memory.py)
    world_model = WorldModel(encoder, predictor)
    encoder_sha = {"encoder_sha256": json.loads((export / "encoder.json").read_text())["sha256"]}
    build_memory(world_model, train_dir, export / "memory.safetensors", meta=encoder_sha)
    # and its object locator, an attentive probe on the same frozen latents (train/locator.py;
    # ~20 min on 2 cores, so one finished for this encoder is kept)
    locator_file = export / "locator.safetensors"
    done = stages.done.get("locator", {}).get("encoder_sha256") == encoder_sha["encoder_sha256"]
    if not (done and locator_file.is_file()):
        locator = build_locator(world_model, train_dir, val_dir, locator_file, cfg.locator, meta=encoder_sha,
                                progress=progress)
        stages.record("locator", {**{k: locator.card[k] for k in ("recorded", "recoloured", "seconds")},
                                  **encoder_sha})
    stages.record("export", {"dir": str(export), "session_seconds": round(time.time() - started, 1)})
    (export / "README.md").write_text(model_card_markdown(export, stages.done))
    return stages.done


def model_card_markdown(export: Path, stages: dict[str, Any]) -> str:
    """checkpoints/README.md: the human-readable summary of the two JSON cards beside it."""
    enc = json.loads((export / "encoder.json").read_text())
    pred = json.loads((export / "predictor.json").read_text())
    probe, prediction = stages["probe"], stages["prediction"]
    tr, va = enc["data"]["train"], enc["data"]["val"]
    lines = [
        "# Shipped checkpoints: our V-JEPA 2 encoder and V-JEPA 2-AC predictor",
        "",
        "Written by `ami-robot reproduce` (ami_robot/conf/reproduce.yaml); every figure below comes from",
        "that run and is also in the JSON cards beside this file (`encoder.json`, `predictor.json`).",
        "",
        "| file | architecture | sha256 | steps | wall time |",
        "|---|---|---|---|---|",
    ]
    for card in (enc, pred):
        c = card["config"]
        arch = (f"dim {c['dim']}, depth {c['depth']}, heads {c['heads']}, {c['img_size']} px, "
                f"patch {c['patch_size']}")
        lines.append(f"| {card['file']} | {arch} | `{card['sha256'][:16]}...` | {card['training']['steps']} "
                     f"| {card['training']['wall_s'] / 60:.1f} min |")
    memory_card = export / "memory.json"
    if memory_card.is_file():  # the retrieval policy's memory (policies/retrieval/memory.py)
        mem = json.loads(memory_card.read_text())
        pooled = f"{mem['pooled']} x {mem['pooled']}"
        lines.append(f"| {mem['file']} | keys of {mem['frames']} training frames ({pooled} pooled, "
                     f"{mem['components']} principal directions) and their robot states "
                     f"| `{mem['sha256'][:16]}...` | - | {mem['build_seconds'] / 60:.1f} min |")
    locator_card = export / "locator.json"
    if locator_card.is_file():  # the retrieval policy's object locator (policies/retrieval/locator.py)
        loc = json.loads(locator_card.read_text())
        recorded, recoloured = loc["recorded"], loc["recoloured"]
        lines.append(f"| {loc['file']} | attentive probe ({loc['config']['queries']} queries) from frozen "
                     f"latents to object and TCP xyz; validation object x-y error median "
                     f"{recorded['object_xy_cm_median']} cm ({recoloured['object_xy_cm_median']} cm "
                     f"recoloured) | `{loc['sha256'][:16]}...` | {loc['training']['steps']} "
                     f"| {loc['seconds'] / 60:.1f} min |")
    lines += [
        "",
        f"Machine: {enc['training']['machine']}, {enc['training']['cpus']} torch threads, device "
        f"{enc['training']['device']}.",
        "",
        "## Data",
        "",
        f"{tr['episodes']} reward-free episodes ({enc['training']['frames']} frames) of the four tasks in "
        "the "
        f"training split (seeds {tr['seed']} .. {tr['seed'] + tr['episodes'] - 1}, {tr['palette']} palette), "
        f"{tr['image_size']} px, a mix of noisy scripted play and random exploration ({tr['mix']}); "
        f"{va['episodes']} validation episodes (seeds {va['seed']} .. {va['seed'] + va['episodes'] - 1}) "
        "for the figures below.",
        "",
        "## Encoder: linear probe on held-out episodes (R^2, higher is better)",
        "",
        "Ridge regression from 4 x 4 pooled patch features, fit on "
        f"{probe['trained']['fit_frames']} frames of the training episodes, scored on the "
        f"{probe['trained']['scored_frames']} frames of the validation episodes; the random-init twin is "
        "the same architecture left untrained.",
        "",
        "| target | " + " | ".join(probe["trained"]["r2"]) + " | mean | feature spread |",
        "|---|" + "---|" * (len(probe["trained"]["r2"]) + 2),
    ]
    for name in ("trained", "random_init"):
        row = probe[name]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row["r2"].values())
                     + f" | {row['r2_mean']:.3f} | {row['feature_spread']:.3f} |")
    lines += [
        "",
        "## Predictor: latent L1 of autoregressive predictions on held-out episodes (lower is better)",
        "",
        "| horizon | " + " | ".join(str(h + 1) for h in range(len(prediction["model"]))) + " |",
        "|---|" + "---|" * len(prediction["model"]),
        "| predictor | " + " | ".join(f"{v:.4f}" for v in prediction["model"]) + " |",
        "| nothing moves (copy last) | " + " | ".join(f"{v:.4f}" for v in prediction["copy_last"]) + " |",
        "",
    ]
    return "\n".join(lines)
