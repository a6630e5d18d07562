"""Episodic memory of training frames: what the robot did around frames that look like a goal image.

The memory holds, for every training frame, a key (its encoder latent pooled to a coarse grid and
projected on its principal directions) and the robot's own state; nothing about the objects. For
a goal image's latent it returns the k nearest training frames and reads the robot path that led
there in their episodes: where the hand was when the gripper last closed (or opened) before the
goal, and the gripper state the goal implies. The retrieval policy turns that into its phases.
Built by `ami-robot memory` (ami_robot.train.memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.policies.retrieval.fingerprint import probe_image, same_encoder
from ami_robot.weights import load_with_card, save_with_card
from ami_robot.world_model import WorldModel, pool_features

CLOSED = 0.25  # gripper state (0 open .. 1 closed) above which the hand counts as closed
HELD_MAX = 0.85  # fingers stopped short of this hold something between them
FORMAT = "ami-robot/memory-v1"


@dataclass
class Retrieval:
    """The k training frames nearest a goal image and what their robot states say."""

    frames: np.ndarray  # (k,) indices into the memory
    distances: np.ndarray  # (k,) key distance
    xyz: np.ndarray  # (3,) median TCP of the neighbours
    holding: int  # neighbours whose fingers stopped on something (CLOSED < gripper < HELD_MAX)
    open: int  # neighbours with the gripper open (<= CLOSED)
    grasp_xyz: np.ndarray | None  # (3,) median TCP where their episodes last grasped, before the frame
    release_xyz: np.ndarray | None  # (3,) median TCP where they last released something


class FrameMemory:
    """Keys and robot states of training frames, with their episode boundaries."""

    def __init__(self, keys: torch.Tensor, states: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 mean: torch.Tensor, basis: torch.Tensor, pooled: int, fingerprint: torch.Tensor,
                 meta: dict[str, Any] | None = None) -> None:
        if keys.ndim != 2 or keys.shape[0] != states.shape[0] or keys.shape[1] != basis.shape[1]:
            raise ValueError(f"keys {tuple(keys.shape)}, states {states.shape} and basis "
                             f"{tuple(basis.shape)} disagree")
        if int(lengths.sum()) != states.shape[0]:
            raise ValueError(f"episode lengths sum to {int(lengths.sum())}, but there are "
                             f"{states.shape[0]} frames")
        self.keys, self.states = keys.float(), np.asarray(states, np.float32)
        self.starts, self.lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        self.mean, self.basis, self.pooled = mean.float(), basis.float(), pooled
        self.fingerprint = fingerprint.float()  # the key of probe_image(): which encoder made the keys
        self.meta = meta or {}
        self.episode = np.repeat(np.arange(len(self.starts)), self.lengths)

    # ------------------------------------------------------------------ build, save, load

    @classmethod
    @torch.no_grad()
    def build(cls, world_model: WorldModel, data: Any, pooled: int = 4, components: int = 64,
              batch: int = 512) -> FrameMemory:
        """Encode every frame of `data` (ami_robot.data.Trajectories); keys are the pooled latents
        projected on their first `components` principal directions (whitening is not used:
        the L1 distance keeps the directions' own scales)."""
        pooled_latents = torch.cat([_pool(world_model.encode(data.frames[i:i + batch]), pooled)
                                    for i in range(0, len(data.frames), batch)])  # (F, P*P*D)
        mean = pooled_latents.mean(0)
        rows = torch.randperm(len(pooled_latents), generator=torch.Generator().manual_seed(0))[:8192]
        _, _, v = torch.linalg.svd(pooled_latents[rows] - mean, full_matrices=False)
        basis = v[:components].T.contiguous()  # (P*P*D, components)
        keys = (pooled_latents - mean) @ basis
        fingerprint = (_pool(world_model.encode(probe_image()), pooled) - mean) @ basis
        return cls(keys, data.states, data.starts - data.starts[0], data.lengths, mean, basis, pooled,
                   fingerprint[0])

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """memory.safetensors and its JSON card (sha256, `meta`), each written atomically."""
        tensors = {"keys": self.keys.half().contiguous(), "states": torch.from_numpy(self.states),
                   "starts": torch.from_numpy(self.starts), "lengths": torch.from_numpy(self.lengths),
                   "mean": self.mean, "basis": self.basis.contiguous(), "fingerprint": self.fingerprint}
        card = {"pooled": self.pooled, "frames": int(self.keys.shape[0]), "episodes": len(self.starts),
                "components": int(self.basis.shape[1]), **(meta or self.meta)}
        save_with_card(tensors, path, card, metadata={"format": FORMAT, "pooled": str(self.pooled)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FrameMemory:
        """Load memory.safetensors, its sha256 checked against the card beside it."""
        t, card = load_with_card(path, FORMAT, "memory", ("rebuild it with `ami-robot memory` (or "
                                                          "`ami-robot reproduce`)", "rebuild it"))
        return cls(t["keys"].float(), t["states"].numpy(), t["starts"].numpy(), t["lengths"].numpy(),
                   t["mean"], t["basis"], int(card["pooled"]), t["fingerprint"], meta=card)

    def check(self, world_model: WorldModel) -> None:
        """Raise if `world_model`'s encoder is not the one that made the keys (they would mean nothing)."""
        if not same_encoder(self.key(world_model.encode(probe_image()))[0], self.fingerprint):
            raise ValueError("the memory's keys were made by a different encoder than this world model's; "
                             "rebuild it with `ami-robot memory` for this model (or use the shipped model)")

    # ------------------------------------------------------------------ retrieval

    def key(self, z: torch.Tensor) -> torch.Tensor:
        """Keys of latents (B, N, D) -> (B, components)."""
        return (_pool(z, self.pooled) - self.mean) @ self.basis

    def retrieve(self, z: torch.Tensor, k: int = 10) -> Retrieval:
        """The k training frames nearest one goal image's latent (N, D), and where their episodes
        last grasped and released something before them."""
        distance = (self.keys - self.key(z[None])).abs().mean(1)  # (F,)
        order = distance.argsort()[:k].numpy()
        grip = self.states[order, 6]
        grasps = [c for c in (self.last_change(int(f), to_closed=True) for f in order) if c is not None]
        releases = [c for c in (self.last_change(int(f), to_closed=False) for f in order) if c is not None]
        return Retrieval(order, distance[order].numpy(), np.median(self.states[order, :3], 0),
                         int(((grip > CLOSED) & (grip < HELD_MAX)).sum()), int((grip <= CLOSED).sum()),
                         np.median(self.states[grasps, :3], 0) if grasps else None,
                         np.median(self.states[releases, :3], 0) if releases else None)

    def grasp_height(self) -> float:
        """The median TCP height of every grasp in the memory: the fallback when no neighbour grasped."""
        if not hasattr(self, "_grasp_height"):
            ends = self.starts + self.lengths - 1
            grasps = [self.last_change(int(f), to_closed=True) for f in ends]
            heights = [self.states[g, 2] for g in grasps if g is not None]
            self._grasp_height = float(np.median(heights)) if heights else float(np.min(self.states[:, 2]))
        return self._grasp_height

    def last_change(self, frame: int, to_closed: bool, settle: int = 2) -> int | None:
        """The last frame of `frame`'s episode, up to it, from which the gripper closed on
        something (or opened after holding something): where a grasp (or a release) happened.

        Holding is read from the robot alone: `settle` frames after closing, the fingers stopped
        short of fully closed (between CLOSED and HELD_MAX); closing on air is not a grasp.
        """
        start = self.starts[self.episode[frame]]
        grip = self.states[start:frame + 1, 6]
        closed = grip > CLOSED
        changed = closed[1:] & ~closed[:-1] if to_closed else ~closed[1:] & closed[:-1]
        flips = np.flatnonzero(changed)  # frame start + f is the last one before the change
        for flip in flips[::-1]:
            if to_closed:
                after = self.states[start + flip + 1:start + flip + 2 + settle, 6]
                held = after[-1] if len(after) else 1.0
            else:
                held = grip[flip]
            if CLOSED < held < HELD_MAX:
                return int(start + flip)
        return None


def _pool(z: torch.Tensor, pooled: int) -> torch.Tensor:
    """Latents of one square view (B, N, D) pooled to (pooled x pooled) and flattened."""
    side = math.isqrt(z.shape[1])
    return pool_features(z, (side, side), pooled)
