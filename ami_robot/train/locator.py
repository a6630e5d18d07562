"""Training the object locator (ami_robot.models.locator) on frozen latents of the training episodes.

Targets are simulator positions (object and TCP xyz), privileged at training time only; the
retrieval policy reads the trained probe from images alone. The probe also trains on frames whose
object is repainted in random colours, so that colours no training episode used read as well.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ami_robot.data import load_trajectories
from ami_robot.models.locator import LocatorConfig, LocatorNet, recolour
from ami_robot.policies.retrieval.fingerprint import probe_image
from ami_robot.policies.retrieval.locator import Locator
from ami_robot.world_model import WorldModel


@dataclass(frozen=True)
class LocatorTrainConfig:
    steps: int = 8000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    recoloured_copies: int = 2  # recoloured copies of every training frame, beside the originals
    seed: int = 0


def _targets(data: Any) -> torch.Tensor:
    if "object_pos" not in data.extras:
        raise ValueError("the locator needs object positions (extras['object_pos']); recollect the data")
    return torch.from_numpy(np.concatenate([data.extras["object_pos"], data.states[:, :3]], 1)).float()


@torch.no_grad()
def _encode(world_model: WorldModel, frames: torch.Tensor | np.ndarray, batch: int = 512) -> torch.Tensor:
    return torch.cat([world_model.encode(frames[i:i + batch]).half() for i in range(0, len(frames), batch)])


def evaluate_locator(net: LocatorNet, latents: torch.Tensor, targets: torch.Tensor,
                     first: np.ndarray) -> dict[str, float]:
    """Object x-y error (cm) over all frames and at each episode's first frame (the arm at home)."""
    with torch.no_grad():
        found = net.metres(latents)
    error = (found[:, :2] - targets[:, :2]).norm(dim=1) * 100
    tcp = (found[:, 3:5] - targets[:, 3:5]).norm(dim=1) * 100

    def q(x: torch.Tensor, p: float) -> float:
        return round(float(x.quantile(p)), 2)

    return {"object_xy_cm_median": q(error, 0.5), "object_xy_cm_p90": q(error, 0.9),
            "first_frame_object_xy_cm_median": q(error[first], 0.5),
            "first_frame_object_xy_cm_p90": q(error[first], 0.9), "tcp_xy_cm_median": q(tcp, 0.5)}


def train_locator(world_model: WorldModel, train: Any, val: Any,
                  cfg: LocatorTrainConfig = LocatorTrainConfig(),
                  progress: bool = True) -> tuple[Locator, dict[str, Any]]:
    """Train a locator on frozen latents of `train` (ami_robot.data.Trajectories) and its recoloured
    copies; report its errors on `val`, as recorded and recoloured."""
    started = time.time()
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    frames = torch.from_numpy(train.frames)
    latents = [_encode(world_model, frames)]
    for _ in range(cfg.recoloured_copies):
        latents.append(_encode(world_model, recolour(frames, generator)))
    x = torch.cat(latents)
    y = _targets(train).repeat(1 + cfg.recoloured_copies, 1)
    net = LocatorNet(LocatorConfig(dim=x.shape[-1], tokens=x.shape[1]))
    net.mean.copy_(y.mean(0))
    net.std.copy_(y.std(0).clamp_min(1e-4))
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    encode_seconds = time.time() - started
    for _ in tqdm(range(cfg.steps), desc="locator", disable=not progress):
        rows = torch.randint(0, len(x), (cfg.batch_size,), generator=generator)
        loss = F.smooth_l1_loss(net(x[rows]), (y[rows] - net.mean) / net.std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    locator = Locator(net)
    net.fingerprint.copy_(torch.as_tensor(locator.locate(world_model.encode(probe_image()))[0]))
    first = np.concatenate([[0], np.cumsum(val.lengths)[:-1]])
    val_frames, val_targets = torch.from_numpy(val.frames), _targets(val)
    report = {"recorded": evaluate_locator(net, _encode(world_model, val_frames), val_targets, first),
              "recoloured": evaluate_locator(net, _encode(world_model, recolour(val_frames, generator)),
                                             val_targets, first),
              "train_frames": int(len(frames)), "val_frames": int(len(val_frames)), "training": asdict(cfg),
              "encode_seconds": round(encode_seconds, 1), "seconds": round(time.time() - started, 1)}
    return locator, report


def build_locator(world_model: WorldModel, train_dir: str | Path, val_dir: str | Path, out: str | Path,
                  cfg: LocatorTrainConfig = LocatorTrainConfig(), meta: dict[str, Any] | None = None,
                  progress: bool = True) -> Locator:
    """Train on the shards under `train_dir`, report on those under `val_dir`; write `out` and its card."""
    train, val = load_trajectories(train_dir, strict=True), load_trajectories(val_dir, strict=True)
    locator, report = train_locator(world_model, train, val, cfg, progress=progress)
    card = {"data_dir": str(train_dir), "val_dir": str(val_dir), "episodes": int(train.num_episodes),
            **report, **(meta or {})}
    locator.save(out, meta=card)
    return locator
