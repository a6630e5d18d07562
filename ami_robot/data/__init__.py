"""Reward-free trajectory data: collection, sharded storage, and torch datasets of clips and frames.

    actions     the V-JEPA 2-AC action convention: from states, composed over skipped steps
    shards      the on-disk format (atomic .npz shards + manifest.json with sha256)
    writer      ShardWriter: append episodes, resume and repair an interrupted folder
    dataset     ClipDataset / FrameDataset over a folder (bad shards named and skipped)
    policies    the data policies (noisy scripted play, random walk)
    play_env    PlayEnv: a collection worker's environment, the policy inside
    collection  CollectConfig, collect(): parallel, deterministic, resumable collection
    lerobot_io  LeRobotDataset folders in and out (the optional `[lerobot]` extra)

Names are imported on first use, so a collection worker never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "actions_from_states": "actions",
    "apply_action": "actions",
    "compose_actions": "actions",
    "ClipDataset": "dataset",
    "FrameDataset": "dataset",
    "Trajectories": "dataset",
    "load_trajectories": "dataset",
    "concat_trajectories": "dataset",
    "Episode": "shards",
    "ManifestError": "shards",
    "ShardError": "shards",
    "load_manifest": "shards",
    "read_shard": "shards",
    "rebuild_manifest": "shards",
    "write_shard": "shards",
    "ShardWriter": "writer",
    "PlayConfig": "policies",
    "POLICY_KINDS": "policies",
    "CollectConfig": "collection",
    "CollectStats": "collection",
    "collect": "collection",
    "plan_episode": "collection",
    "LeRobotError": "lerobot_io",
    "LeRobotWriter": "lerobot_io",
    "write_lerobot": "lerobot_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ami_robot.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ami_robot.data.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
