"""What a model was trained on is recorded: episodes and shards used and skipped, with sha256;
strict loading turns any damage (a bad shard, a repeated episode) into an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ami_robot.data import load_trajectories
from ami_robot.data.shards import ShardError, load_manifest, save_manifest, write_shard


def test_usage_lists_used_and_skipped_shards_with_their_sha256(dataset_dir: Path) -> None:
    manifest = load_manifest(dataset_dir)
    bad = dataset_dir / "shard-000001.npz"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.warns(UserWarning, match="shard-000001"):
        usage = load_trajectories(dataset_dir).usage()
    json.dumps(usage)  # goes into a model card as it is
    assert usage["dir"] == str(dataset_dir)
    assert usage["episodes_used"] == 7 and usage["episodes_skipped"] == 3
    by_file = {e["file"]: e for e in manifest["shards"]}
    assert [s["file"] for s in usage["shards_skipped"]] == ["shard-000001.npz"]
    skipped = usage["shards_skipped"][0]
    assert skipped["episodes"] == [3, 4, 5] and skipped["sha256"] == by_file["shard-000001.npz"]["sha256"]
    assert skipped["reason"]  # why, in words
    assert [s["file"] for s in usage["shards_used"]] == ["shard-000000.npz", "shard-000002.npz",
                                                         "shard-000003.npz"]
    assert all(s["sha256"] == by_file[s["file"]]["sha256"] for s in usage["shards_used"])
    assert [i for s in usage["shards_used"] for i in s["episodes"]] == [0, 1, 2, 6, 7, 8, 9]


def test_a_repeated_episode_is_recorded_or_under_strict_refused(dataset_dir: Path, make_episode) -> None:
    manifest = load_manifest(dataset_dir)
    manifest["shards"].append(write_shard(dataset_dir / "shard-000004.npz", [make_episode(2, steps=8)]))
    save_manifest(dataset_dir, manifest)
    with pytest.warns(UserWarning, match="episode 2 appears again"):
        usage = load_trajectories(dataset_dir).usage()
    assert usage["repeated_episodes_skipped"] == [2] and usage["episodes_used"] == 10
    with pytest.raises(ShardError, match=r"shard-000004\.npz.*episode 2 appears again"):
        load_trajectories(dataset_dir, strict=True)


def test_clean_data_has_nothing_skipped(dataset_dir: Path) -> None:
    usage = load_trajectories(dataset_dir, strict=True).usage()
    assert usage["episodes_used"] == 10 and usage["episodes_skipped"] == 0
    assert usage["shards_skipped"] == [] and usage["repeated_episodes_skipped"] == []
