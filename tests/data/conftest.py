"""Synthetic trajectories for the data-layer tests: frames that say which frame they are, states
produced by applying known actions (so the true deltas are known exactly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ami_robot.data import Episode, ShardWriter, apply_action

SIZE = 8  # frame side in pixels: tiny, the tests are about bookkeeping


def make_episode(ep_id: int, steps: int, seed: int | None = None, size: int = SIZE) -> Episode:
    """Frame k of episode e has red = k and green = e % 256; states follow the actions exactly."""
    rng = np.random.default_rng(ep_id if seed is None else seed)
    actions = np.zeros((steps, 7), np.float32)
    actions[:, 0:3] = rng.uniform(-0.03, 0.03, (steps, 3))
    actions[:, 3:6] = rng.uniform(-0.2, 0.2, (steps, 3))
    actions[:, 6] = rng.uniform(-0.1, 0.1, steps)
    states = np.empty((steps + 1, 7), np.float32)
    states[0] = [0.5, 0.0, 0.3, np.pi - 0.05, 0.1, -0.2, 0.5]  # near the Euler wrap on purpose
    for k in range(steps):
        states[k + 1] = apply_action(states[k], actions[k])
    actions[:, 6] = np.diff(states[:, 6])  # the gripper clips at [0, 1]: keep actions exact
    frames = np.zeros((steps + 1, size, size, 3), np.uint8)
    frames[..., 0] = np.arange(steps + 1, dtype=np.uint8)[:, None, None]
    frames[..., 1] = ep_id % 256
    meta = {"task": ["Reach", "Push"][ep_id % 2], "seed": ep_id, "policy": "synthetic"}
    index = np.arange(steps + 1, dtype=np.float32)
    extras = {"object_pos": np.stack([index, np.full_like(index, ep_id), np.zeros_like(index)], 1)}
    return Episode(id=ep_id, frames=frames, states=states, actions=actions, meta=meta, extras=extras)


@pytest.fixture(name="make_episode")
def make_episode_fixture() -> Callable[..., Episode]:
    return make_episode


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    """A folder with 10 episodes of 6..15 steps in 4 shards (3 + 3 + 3 + 1)."""
    root = tmp_path / "ds"
    with ShardWriter(root, {"kind": "synthetic"}, episodes_per_shard=3) as writer:
        for i in range(10):
            writer.add(make_episode(i, steps=6 + i))
    return root
