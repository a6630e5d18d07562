"""What both trainers share: distributed setup, LR schedules, resumable checkpoints, metrics.

Training checkpoints hold optimiser state, so they are torch files; they are written atomically
(temp file + rename) and read back with ``weights_only=True``. The weights we ship are written
separately as safetensors by ``ami_robot.weights``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when there is one (gloo on CPU, NCCL on GPU)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, device=dev)


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (libraries that still draw from the global state)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class ScheduleConfig:
    peak_lr: float = 3e-4
    warmup_steps: int = 200
    total_steps: int = 5000
    kind: str = "wsd"  # "wsd": warmup-constant-decay (V-JEPA 2), or "cosine"
    decay_fraction: float = 0.2  # wsd: the last fraction of steps decays linearly to final_lr
    start_lr: float = 1e-5
    final_lr: float = 1e-6

    def __post_init__(self) -> None:
        if self.kind not in ("wsd", "cosine"):
            raise ValueError(f"ScheduleConfig.kind must be 'wsd' or 'cosine', got {self.kind!r}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError("ScheduleConfig needs 0 <= warmup_steps < total_steps")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ValueError("ScheduleConfig.decay_fraction must lie in (0, 1]")


def learning_rate(step: int, cfg: ScheduleConfig) -> float:
    """Learning rate at optimiser step ``step`` (0-based)."""
    if step < cfg.warmup_steps:
        return cfg.start_lr + (cfg.peak_lr - cfg.start_lr) * step / max(1, cfg.warmup_steps)
    if cfg.kind == "cosine":
        progress = (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps)
        progress = min(1.0, progress)
        return cfg.final_lr + 0.5 * (cfg.peak_lr - cfg.final_lr) * (1 + math.cos(math.pi * progress))
    decay_start = cfg.total_steps - int(cfg.decay_fraction * cfg.total_steps)
    if step < decay_start:
        return cfg.peak_lr
    progress = min(1.0, (step - decay_start) / max(1, cfg.total_steps - decay_start))
    return cfg.peak_lr + (cfg.final_lr - cfg.peak_lr) * progress


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def save_training_state(path: Path, state: dict[str, Any]) -> None:
    """Write a resumable training checkpoint atomically: a kill -9 leaves the old one intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary file per process: DDP ranks that cache the same file (latents_for) raced on a
    # shared "<name>.tmp", and the slower one found it renamed away (FileNotFoundError).
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class TrainingState:
    """`train_state.pt` in a run folder: resume what it holds, save it atomically at intervals.

    The named objects (modules, optimisers) are restored from and saved into the file; a file
    written under another config is refused rather than silently continued.
    """

    def __init__(self, out_dir: Path, config: dict[str, Any], objects: dict[str, Any]) -> None:
        self.path = Path(out_dir) / "train_state.pt"
        self.config, self.objects = config, objects
        self.step, self.wall_before = 0, 0.0
        self._started = time.time()
        state = load_training_state(self.path)
        if state is None:
            return
        if state["config"] != config:
            raise ValueError(f"{self.path} was written with another config; use a new output directory "
                             "or the same config")
        for name, obj in objects.items():
            obj.load_state_dict(state[name])
        self.step, self.wall_before = state["step"], state["wall_s"]

    @property
    def wall_s(self) -> float:
        """Training seconds so far, across every resumed session."""
        return self.wall_before + time.time() - self._started

    def due(self, step: int, every: int, steps: int, stop_after: int | None) -> bool:
        """Whether to checkpoint after `step`: every `every` steps, and at the last step of this call."""
        done = step + 1
        return done % every == 0 or done == steps or (stop_after is not None and done == stop_after)

    def save(self, step: int) -> None:
        """Checkpoint after `step` (0-based) has been taken."""
        state = {"config": self.config, "step": step + 1, "wall_s": self.wall_s}
        state.update({name: obj.state_dict() for name, obj in self.objects.items()})
        save_training_state(self.path, state)


class MetricsLog:
    """Append-only JSONL of training metrics; every line is flushed as it is written.

    A run resumed from a checkpoint taken after step `start_step - 1` first cuts the rows of
    steps >= start_step (written after that checkpoint by the session that was killed), so the
    steps it takes again are not logged twice.
    """

    def __init__(self, path: Path, enabled: bool = True, *, start_step: int) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._start = time.time()
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self._truncate_to(start_step)

    def _truncate_to(self, start_step: int) -> None:
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the torn last line of a killed session
            if not isinstance(row, dict) or not isinstance(row.get("step"), int) or row["step"] < start_step:
                kept.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)  # atomic: a kill now leaves the old rows, not none

    def write(self, **fields: Any) -> None:
        if not self.enabled:
            return
        fields.setdefault("time_s", round(time.time() - self._start, 3))
        with open(self.path, "a") as f:
            f.write(json.dumps(fields) + "\n")
            f.flush()


def step_batches(num_items: int, batch_size: int, seed: int, start_step: int, rank: int, world_size: int):
    """Yield (step, this rank's item indices) from start_step on; the order depends only on the seed.

    Each epoch is a seeded permutation cut into global batches; rank r takes every world_size-th
    item of each, so a resumed or a distributed run sees exactly the batches a plain run would.
    """
    per_epoch = num_items // batch_size
    if per_epoch == 0:
        raise ValueError(f"dataset has {num_items} samples, fewer than one batch of {batch_size}")
    step = start_step
    while True:
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(num_items)
        yield step, order[offset * batch_size : (offset + 1) * batch_size][rank::world_size]
        step += 1


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
