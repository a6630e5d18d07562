"""The AC predictor training loop, and the figures that say whether it learned anything.

Frames are encoded once by the frozen encoder (cached as float16 beside the run, reused on
resume). Episodes with id % holdout_every == 0 are held out for evaluation: latent prediction
error at horizons 1..8 against the "nothing moves" baseline (copy the last frame's latent).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ami_robot.data import Trajectories, actions_from_states, concat_trajectories, load_trajectories
from ami_robot.hub import load_part
from ami_robot.models.encoder import VisionTransformer
from ami_robot.models.predictor import PREDICTOR_CONFIGS, ACPredictor, PredictorConfig
from ami_robot.train.ac import encode_frames, rollout_loss, teacher_forcing_loss
from ami_robot.train.common import (
    MetricsLog,
    ScheduleConfig,
    TrainingState,
    learning_rate,
    save_training_state,
    seed_everything,
    set_lr,
    setup_distributed,
    step_batches,
    unwrap,
)

AUTOCAST = ("float32", "bfloat16")


@dataclass(frozen=True)
class PredictorTrainConfig:
    predictor: str = "tiny"  # a name in PREDICTOR_CONFIGS (input_dim must equal the encoder's dim)
    residual: bool = False  # PredictorConfig.residual: predict the change from each step's frame tokens
    # A predictor of ours (a model folder, or a predictor .safetensors with its card) to start from:
    # fine-tuning on new data, or training on where an earlier run stopped. Its config must be this one's.
    init_from: str | None = None
    clip_len: int = 4  # T: actions per training clip (T + 1 frames)
    frame_skip: int = 1  # env steps between kept frames
    rollout_steps: int = 2  # the rollout loss's recurrence length (<= clip_len)
    batch_size: int = 32
    steps: int = 2000
    peak_lr: float = 4.25e-4  # V-JEPA 2-AC
    warmup_steps: int = 100
    schedule_kind: str = "wsd"
    weight_decay: float = 0.04
    grad_clip: float = 1.0
    holdout_every: int = 20  # episodes with id % holdout_every == 0 are evaluation-only
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 20
    # "bfloat16": forward and losses under autocast (weights, gradients and AdamW stay float32); on a
    # CPU with AVX512-BF16 or AMX a step is ~1.6x faster (docs/performance.md)
    autocast: str = "float32"

    def __post_init__(self) -> None:
        if self.predictor not in PREDICTOR_CONFIGS:
            raise ValueError(f"unknown predictor {self.predictor!r}; choose from {sorted(PREDICTOR_CONFIGS)}")
        if not 1 <= self.rollout_steps <= self.clip_len:
            raise ValueError("need 1 <= rollout_steps <= clip_len")
        if self.holdout_every < 2:
            raise ValueError("holdout_every must be >= 2")
        self.schedule  # noqa: B018 (validates the schedule fields)
        if self.autocast not in AUTOCAST:
            raise ValueError(f"autocast must be one of {', '.join(AUTOCAST)}, got {self.autocast!r}")

    @property
    def schedule(self) -> ScheduleConfig:
        return ScheduleConfig(peak_lr=self.peak_lr, warmup_steps=self.warmup_steps, total_steps=self.steps,
                              kind=self.schedule_kind)

    @property
    def predictor_config(self) -> PredictorConfig:
        return dataclasses.replace(PREDICTOR_CONFIGS[self.predictor], residual=self.residual)


def clip_starts(data: Trajectories, span: int, episodes: np.ndarray) -> np.ndarray:
    """Global frame indices where `span` + 1 frames fit inside one of the given episodes."""
    out = [data.starts[e] + np.arange(int(data.lengths[e]) - span) for e in episodes
           if data.lengths[e] > span]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def split_episodes(data: Trajectories, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
    held = data.episode_ids % holdout_every == 0
    return np.flatnonzero(~held), np.flatnonzero(held)


def latents_for(data: Trajectories, encoder: VisionTransformer, cache: Path, progress: bool) -> torch.Tensor:
    """Every frame's latent (F, N, D) float16, from `cache` when it holds this encoder's latents of
    these shards (a cache written before shards were recorded in it is matched on the frame count)."""
    key, shards = _encoder_key(encoder), [entry["sha256"] for entry in data.shards_used]
    if cache.exists():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        same_data = saved["frames"] == data.num_frames and saved.get("shards", shards) == shards
        if saved["key"] == key and same_data:
            return saved["latents"]
    with tqdm(total=data.num_frames, desc="encode", disable=not progress) as bar:
        latents = encode_frames(encoder, torch.from_numpy(data.frames), progress=bar, views=data.views)
    save_training_state(cache, {"key": key, "frames": data.num_frames, "shards": shards, "latents": latents})
    return latents


def initial_predictor(path: str | Path, config: PredictorConfig) -> ACPredictor:
    """The predictor at `path` (a hub folder, or ours per file) to train on; its config must be `config`."""
    predictor = load_part(path, "predictor")
    if predictor.config != config:
        raise ValueError(f"predictor.init_from={path} is a {predictor.config}, but this run trains a "
                         f"{config}: set predictor.predictor and predictor.residual to match it (the "
                         f"number of views comes from the data)")
    return predictor.train()


def _encoder_key(encoder: VisionTransformer) -> str:
    total = sum(float(p.detach().double().sum()) for p in encoder.parameters())
    return f"{encoder.config}|{total:.10e}"


def _clip_batch(data: Trajectories, latents: torch.Tensor, starts: np.ndarray, clip_len: int,
                frame_skip: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    kept = starts[:, None] + frame_skip * np.arange(clip_len + 1)  # (B, T+1)
    states = data.states[kept]  # (B, T+1, 7)
    z = latents[torch.from_numpy(kept)].float()  # (B, T+1, N, D)
    actions = torch.from_numpy(actions_from_states(states))  # (B, T, 7), the V-JEPA 2-AC convention
    return z.to(device), actions.to(device), torch.from_numpy(states).to(device)


def train_predictor(
    cfg: PredictorTrainConfig, data_dir: str | Path | Sequence[str | Path], encoder: VisionTransformer,
    out_dir: str | Path,
    device: str = "auto", progress: bool = True, stop_after: int | None = None, strict_data: bool = False,
) -> dict[str, Any]:
    """Train (or resume) an AC predictor on the frozen encoder's latents; returns a summary.

    data_dir: one dataset folder, or several trained on as one (the first one's latents are cached
    in out_dir/latents.pt, the k-th extra one's in latents.k.pt).

    strict_data: a damaged shard or a repeated episode stops training (ShardError) instead of
    being skipped with a warning; the summary's `data` says what was used and skipped either way.
    """
    dist_info = setup_distributed(device)
    dev = dist_info.device
    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    dirs = [data_dir] if isinstance(data_dir, str | os.PathLike) else list(data_dir)
    parts = [load_trajectories(d, strict=strict_data) for d in dirs]
    data = concat_trajectories(parts)
    pcfg = dataclasses.replace(cfg.predictor_config, views=data.views)  # as many views as the frames show
    if pcfg.input_dim != encoder.config.dim or pcfg.grid != encoder.config.grid:
        raise ValueError(f"predictor {cfg.predictor!r} expects dim {pcfg.input_dim} on a {pcfg.grid}^2 grid; "
                         f"the encoder gives dim {encoder.config.dim} on {encoder.config.grid}^2")
    encoder = encoder.eval().requires_grad_(False)
    caches = [out_dir / ("latents.pt" if k == 0 else f"latents.{k}.pt") for k in range(len(parts))]
    pieces = [latents_for(part, encoder, cache, progress and dist_info.is_main)
              for part, cache in zip(parts, caches, strict=True)]
    latents = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    train_eps, _ = split_episodes(data, cfg.holdout_every)
    starts = clip_starts(data, cfg.clip_len * cfg.frame_skip, train_eps)

    model = ACPredictor(pcfg) if cfg.init_from is None else initial_predictor(cfg.init_from, pcfg)
    model = model.to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.peak_lr, betas=(0.9, 0.999),
                                  weight_decay=cfg.weight_decay)
    resume = TrainingState(out_dir, asdict(cfg), {"model": model, "optimizer": optimizer})
    start_step = resume.step
    if dist_info.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    log = MetricsLog(out_dir / "metrics.jsonl", enabled=dist_info.is_main, start_step=start_step)
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not (progress and dist_info.is_main), desc="ac")
    rank, world = dist_info.rank, dist_info.world_size
    for step, idx in step_batches(len(starts), cfg.batch_size, cfg.seed, start_step, rank, world):
        if step >= cfg.steps or (stop_after is not None and step >= stop_after):
            break
        z, actions, states = _clip_batch(data, latents, starts[idx], cfg.clip_len, cfg.frame_skip, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.autocast == "bfloat16"):
            loss_tf = teacher_forcing_loss(model, z, actions, states).float()
            loss_ro = rollout_loss(model, z, actions, states, cfg.rollout_steps).float()
        loss = loss_tf + loss_ro
        lr = learning_rate(step, cfg.schedule)
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.write(step=step, loss=loss.item(), teacher_forcing=loss_tf.item(), rollout=loss_ro.item(),
                      lr=lr, grad_norm=grad_norm.item())
            bar.set_postfix(tf=f"{loss_tf.item():.4f}", ro=f"{loss_ro.item():.4f}")
        if dist_info.is_main and resume.due(step, cfg.checkpoint_every, cfg.steps, stop_after):
            resume.save(step)  # `model` in it is the DDP-unwrapped module: same parameter names
    bar.close()
    return {"steps": cfg.steps, "wall_s": resume.wall_s, "frames": data.num_frames, "data": data.usage(),
            "clips": len(starts), "predictor": unwrap(model).cpu(), "device": str(dev),
            "world_size": dist_info.world_size}


@torch.no_grad()
def prediction_error_by_horizon(
    predictor: ACPredictor, data: Trajectories, latents: torch.Tensor, episodes: np.ndarray,
    horizons: int = 8, max_clips: int = 256, seed: int = 0,
) -> dict[str, list[float]]:
    """Mean L1 of autoregressive predictions at horizons 1..H on the given episodes, beside the
    'nothing moves' baseline (the context frame's latent copied forward). True states condition
    the predictor, as in training."""
    starts = clip_starts(data, horizons, episodes)
    if len(starts) == 0:
        raise ValueError(f"no held-out episode is longer than {horizons} steps")
    rng = np.random.default_rng(seed)
    starts = rng.choice(starts, size=min(max_clips, len(starts)), replace=False)
    dev = next(predictor.parameters()).device
    z, actions, states = _clip_batch(data, latents, starts, horizons, 1, dev)
    context = z[:, :1]
    model, baseline = [], []
    for k in range(horizons):
        pred = predictor(context, actions[:, : k + 1], states[:, : k + 1])[:, -1:]
        pred = torch.nn.functional.layer_norm(pred, pred.shape[-1:])
        model.append(float((pred - z[:, k + 1 : k + 2]).abs().mean()))
        baseline.append(float((z[:, :1] - z[:, k + 1 : k + 2]).abs().mean()))
        context = torch.cat([context, pred], dim=1)
    return {"model": model, "copy_last": baseline}
