"""Where the object is, read from the frozen encoder's patch tokens by a small attentive probe.

The latent energy lines the hand up with a goal image, but Push and pick-and-place from the
final image alone need where the object is *now*, which no goal image shows. The memory's keys
find the arm, not the object, and a linear probe reads object x/y badly (R^2 0.38 / 0.64). The
V-JEPA way to read a frozen encoder is an attentive probe (a few learned queries cross-attend
to the patch tokens, then an MLP); trained here on the training episodes' simulator positions,
used at test time from images alone.

The held-out palette's colours were never seen: trained on the raw frames only, the probe's
error at the first frame of held-out PickPlace episodes is about twice its error on training
colours (median 1.5 vs 0.9 cm). The table, the arm and the shadows are grey, so the coloured
pixels are the object's: the probe also trains on frames whose object is repainted in random
colours.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ami_robot.weights import load_with_card, save_with_card
from ami_robot.world_model import WorldModel

FORMAT = "ami-robot/locator-v1"
TARGETS = ("object_x", "object_y", "object_z", "tcp_x", "tcp_y", "tcp_z")


@dataclass(frozen=True)
class LocatorConfig:
    dim: int = 192  # the encoder's token width
    tokens: int = 64  # patches per frame
    queries: int = 4
    heads: int = 4
    hidden: int = 256
    outputs: int = len(TARGETS)


class Locator(nn.Module):
    """Attentive probe: frozen latents (B, N, D) -> (object xyz, TCP xyz) in metres (B, 6)."""

    def __init__(self, config: LocatorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.norm = nn.LayerNorm(c.dim)
        self.pos = nn.Parameter(torch.zeros(c.tokens, c.dim))  # attention alone ignores token order
        self.query = nn.Parameter(torch.randn(c.queries, c.dim) * 0.02)
        self.attn = nn.MultiheadAttention(c.dim, c.heads, batch_first=True)
        self.head = nn.Sequential(nn.Linear(c.queries * c.dim, c.hidden), nn.GELU(),
                                  nn.Linear(c.hidden, c.outputs))
        self.register_buffer("mean", torch.zeros(c.outputs))  # target standardisation
        self.register_buffer("std", torch.ones(c.outputs))
        self.register_buffer("fingerprint", torch.zeros(c.outputs))  # output on memory.probe_image()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised outputs; `locate` gives metres."""
        z = self.norm(z.float()) + self.pos
        pooled, _ = self.attn(self.query.expand(len(z), -1, -1), z, z)  # (B, Q, D)
        return self.head(pooled.flatten(1))

    @torch.no_grad()
    def locate(self, world_model: WorldModel, pixels: np.ndarray, recoloured: int = 0) -> np.ndarray:
        """uint8 images (B, H, W, 3) -> (B, 6): object xyz and TCP xyz (m).

        `recoloured` > 0: the median over each image and that many copies with the object
        repainted (`recolour`, a fixed seed), which steadies the read of colours unlike any
        seen in training.
        """
        images = torch.as_tensor(np.asarray(pixels))
        if recoloured:
            copies = images.repeat_interleave(recoloured, 0)  # (B*K, H, W, 3)
            images = torch.cat([images, recolour(copies, torch.Generator().manual_seed(0))])
        out = self(world_model.encode(images)) * self.std + self.mean  # (B*(1+K), 6)
        if recoloured:
            b = len(pixels)
            out = torch.cat([out[:b, None], out[b:].reshape(b, recoloured, -1)], 1).median(1).values
        return out.cpu().numpy()

    def check(self, world_model: WorldModel, tolerance: float = 1e-3) -> None:
        """Raise if `world_model`'s encoder is not the one the probe was trained on."""
        from ami_robot.memory import probe_image

        found = torch.as_tensor(self.locate(world_model, probe_image())[0])
        if float((found - self.fingerprint).abs().max()) > tolerance:
            raise ValueError("the locator was trained on a different encoder than this world model's; "
                             "retrain it with `ami-robot locator` for this model (or use the shipped model)")

    # ------------------------------------------------------------------ save, load

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """locator.safetensors and its JSON card (config, sha256, `meta`), each written atomically;
        the card is kept as `self.card`."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        card = {"config": asdict(self.config), "targets": list(TARGETS), **(meta or {})}
        self.card = save_with_card(tensors, path, card, metadata={"format": FORMAT})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Locator:
        """Load locator.safetensors, its sha256 checked against the card beside it."""
        tensors, card = load_with_card(path, FORMAT, "locator", ("train it with `ami-robot locator` (or "
                                                                 "`ami-robot reproduce`)", "retrain it"))
        locator = cls(LocatorConfig(**card["config"]))
        locator.load_state_dict(tensors)
        locator.card = card
        return locator.eval()


def recolour(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) with the coloured pixels (the object: the table, the arm and the
    shadows are grey) repainted in one random colour per frame, their shading kept.

    A pixel's chroma (max - min channel) says how much it belongs to the object; its value (max
    channel) is its shading. Random colours cover pale ones like the held-out pink, which a hue
    rotation of the saturated training colours never reaches.
    """
    x = frames.float() / 255.0
    value, low = x.max(-1, keepdim=True).values, x.min(-1, keepdim=True).values
    weight = ((value - low - 0.08) / 0.12).clamp(0, 1)  # 0 for greys, 1 for clearly coloured pixels
    colour = torch.rand(len(x), 1, 1, 3, generator=generator)
    colour = colour / colour.amax(-1, keepdim=True).clamp_min(1e-3)  # its brightest channel at 1
    x = (1 - weight) * x + weight * value * colour
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


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


def evaluate_locator(locator: Locator, latents: torch.Tensor, targets: torch.Tensor,
                     first: np.ndarray) -> dict[str, float]:
    """Object x-y error (cm) over all frames and at each episode's first frame (the arm at home)."""
    with torch.no_grad():
        found = locator(latents) * locator.std + locator.mean
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
    """Train a Locator on frozen latents of `train` (ami_robot.data.Trajectories) and its recoloured
    copies; report its errors on `val`, as recorded and recoloured."""
    from ami_robot.memory import probe_image

    started = time.time()
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    frames = torch.from_numpy(train.frames)
    latents = [_encode(world_model, frames)]
    for _ in range(cfg.recoloured_copies):
        latents.append(_encode(world_model, recolour(frames, generator)))
    x = torch.cat(latents)
    y = _targets(train).repeat(1 + cfg.recoloured_copies, 1)
    config = LocatorConfig(dim=x.shape[-1], tokens=x.shape[1])
    locator = Locator(config)
    locator.mean.copy_(y.mean(0))
    locator.std.copy_(y.std(0).clamp_min(1e-4))
    opt = torch.optim.AdamW(locator.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    encode_seconds = time.time() - started
    for _ in tqdm(range(cfg.steps), desc="locator", disable=not progress):
        rows = torch.randint(0, len(x), (cfg.batch_size,), generator=generator)
        loss = F.smooth_l1_loss(locator(x[rows]), (y[rows] - locator.mean) / locator.std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    locator.eval()
    locator.fingerprint.copy_(torch.as_tensor(locator.locate(world_model, probe_image())[0]))
    first = np.concatenate([[0], np.cumsum(val.lengths)[:-1]])
    val_frames, val_targets = torch.from_numpy(val.frames), _targets(val)
    report = {"recorded": evaluate_locator(locator, _encode(world_model, val_frames), val_targets, first),
              "recoloured": evaluate_locator(locator, _encode(world_model, recolour(val_frames, generator)),
                                             val_targets, first),
              "train_frames": int(len(frames)), "val_frames": int(len(val_frames)), "training": asdict(cfg),
              "encode_seconds": round(encode_seconds, 1), "seconds": round(time.time() - started, 1)}
    return locator, report


def build_locator(world_model: WorldModel, train_dir: str | Path, val_dir: str | Path, out: str | Path,
                  cfg: LocatorTrainConfig = LocatorTrainConfig(), meta: dict[str, Any] | None = None,
                  progress: bool = True) -> Locator:
    """Train on the shards under `train_dir`, report on those under `val_dir`; write `out` and its card."""
    from ami_robot.data import load_trajectories

    train, val = load_trajectories(train_dir, strict=True), load_trajectories(val_dir, strict=True)
    locator, report = train_locator(world_model, train, val, cfg, progress=progress)
    card = {"data_dir": str(train_dir), "val_dir": str(val_dir), "episodes": int(train.num_episodes),
            **report, **(meta or {})}
    locator.save(out, meta=card)
    return locator
