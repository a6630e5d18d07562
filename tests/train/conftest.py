"""A tiny synthetic trajectory folder: a coloured square that moves with the actions."""

from pathlib import Path

import numpy as np
import pytest

from ami_robot.data import Episode, ShardWriter


def _episode(i: int, steps: int, size: int, rng: np.random.Generator) -> Episode:
    states = np.zeros((steps + 1, 7), np.float32)
    states[0, :2] = rng.uniform(0.2, 0.8, 2)
    for k in range(steps):
        states[k + 1] = states[k]
        states[k + 1, :2] = np.clip(states[k, :2] + rng.uniform(-0.08, 0.08, 2), 0.1, 0.9)
    frames = np.full((steps + 1, size, size, 3), 40, np.uint8)
    for k, s in enumerate(states):
        r, c = (s[:2] * (size - 8)).astype(int)
        frames[k, r : r + 8, c : c + 8] = (220, 60, 30)
    actions = np.diff(states, axis=0).astype(np.float32)
    return Episode(id=i, frames=frames, states=states, actions=actions, meta={"task": "toy", "seed": i})


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_data")
    rng = np.random.default_rng(0)
    with ShardWriter(root, {"kind": "toy"}, episodes_per_shard=8) as writer:
        for i in range(16):
            writer.add(_episode(i, 12, 64, rng))
    return root


@pytest.fixture(scope="session")
def toy_two_view_data(tmp_path_factory) -> Path:
    """The same toy episodes seen by two cameras: the second view is the first mirrored, stacked below it."""
    root = tmp_path_factory.mktemp("toy_two_view_data")
    rng = np.random.default_rng(0)
    with ShardWriter(root, {"kind": "toy", "views": ["exterior", "wrist"]}, episodes_per_shard=8) as writer:
        for i in range(16):
            ep = _episode(i, 12, 64, rng)
            frames = np.concatenate([ep.frames, ep.frames[:, :, ::-1]], axis=1)  # (L+1, 128, 64, 3)
            writer.add(Episode(id=ep.id, frames=frames, states=ep.states, actions=ep.actions, meta=ep.meta))
    return root


@pytest.fixture(scope="session")
def toy_more_data(tmp_path_factory) -> Path:
    """Eight more toy episodes, ids 100-107: a second folder to train on beside toy_data."""
    root = tmp_path_factory.mktemp("toy_more_data")
    rng = np.random.default_rng(1)
    with ShardWriter(root, {"kind": "toy"}, episodes_per_shard=8) as writer:
        for i in range(100, 108):
            writer.add(_episode(i, 12, 64, rng))
    return root
