"""Reward-free trajectory data: collection, sharded storage, and torch datasets of clips and frames.

    actions     the V-JEPA 2-AC action convention: from states, composed over skipped steps
    shards      the on-disk format (atomic .npz shards + manifest.json with sha256)
    writer      ShardWriter: append episodes, resume and repair an interrupted folder
    dataset     ClipDataset / FrameDataset over a folder (bad shards named and skipped)
"""

from ami_robot.data.actions import actions_from_states, apply_action, compose_actions
from ami_robot.data.dataset import ClipDataset, FrameDataset, Trajectories, load_trajectories
from ami_robot.data.shards import (
    Episode,
    ManifestError,
    ShardError,
    load_manifest,
    read_shard,
    rebuild_manifest,
    write_shard,
)
from ami_robot.data.writer import ShardWriter

__all__ = [
    "ClipDataset",
    "Episode",
    "FrameDataset",
    "ManifestError",
    "ShardError",
    "ShardWriter",
    "Trajectories",
    "actions_from_states",
    "apply_action",
    "compose_actions",
    "load_manifest",
    "load_trajectories",
    "read_shard",
    "rebuild_manifest",
    "write_shard",
]
