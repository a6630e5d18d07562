"""Shards and manifest: atomic writes, resume after interruption, bad shards named and skipped."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ami_robot.data import (
    ManifestError,
    ShardError,
    ShardWriter,
    load_manifest,
    load_trajectories,
    read_shard,
    rebuild_manifest,
    write_shard,
)

SETTINGS = {"kind": "synthetic"}


def test_round_trip_keeps_episode_boundaries(tmp_path: Path, make_episode) -> None:
    episodes = [make_episode(i, steps=4 + i) for i in (7, 2, 9)]
    entry = write_shard(tmp_path / "shard-000000.npz", episodes)
    assert entry["episodes"] == [7, 2, 9] and entry["frames"] == 12 + 7 + 14
    shard = read_shard(tmp_path / entry["file"], entry["sha256"])
    for want, got in zip(episodes, shard.episodes(), strict=True):
        assert got.id == want.id and got.meta == want.meta
        np.testing.assert_array_equal(got.frames, want.frames)
        np.testing.assert_array_equal(got.states, want.states)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.extras["object_pos"], want.extras["object_pos"])
    with np.load(tmp_path / entry["file"]) as z:  # a plain npz: readable without our code
        assert z["frames"].shape == (33, 8, 8, 3)


def test_interrupted_write_leaves_no_partial_shard(tmp_path: Path, monkeypatch, make_episode) -> None:
    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_shard(tmp_path / "shard-000000.npz", [make_episode(0, 5)])
    monkeypatch.undo()
    assert not (tmp_path / "shard-000000.npz").exists()
    [stray] = list(tmp_path.iterdir())
    assert ".tmp-" in stray.name
    with pytest.warns(UserWarning, match="unfinished write"):
        ShardWriter(tmp_path, SETTINGS, 2).close()
    assert not stray.exists()


def test_resume_collects_only_missing_episodes(tmp_path: Path, make_episode) -> None:
    with ShardWriter(tmp_path, SETTINGS, 3) as writer:
        for i in range(5):
            writer.add(make_episode(i, 4))
    with ShardWriter(tmp_path, SETTINGS, 3) as writer:
        assert writer.done_ids == set(range(5))
        with pytest.raises(ValueError, match="already stored"):
            writer.add(make_episode(2, 4))
        for i in sorted(set(range(8)) - writer.done_ids):
            writer.add(make_episode(i, 4))
    data = load_trajectories(tmp_path)
    assert sorted(data.episode_ids) == list(range(8))


def test_kill_between_shard_and_manifest_adopts_the_shard(tmp_path: Path, make_episode) -> None:
    with ShardWriter(tmp_path, SETTINGS, 2) as writer:
        writer.add(make_episode(0, 4))
        writer.add(make_episode(1, 4))
    # A shard renamed into place whose manifest update never happened:
    write_shard(tmp_path / "shard-000001.npz", [make_episode(2, 4), make_episode(3, 4)])
    with ShardWriter(tmp_path, SETTINGS, 2) as writer:
        assert writer.done_ids == {0, 1, 2, 3}
        writer.add(make_episode(4, 4))
    files = [e["file"] for e in load_manifest(tmp_path)["shards"]]
    assert files == ["shard-000000.npz", "shard-000001.npz", "shard-000002.npz"]


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_corrupt, _truncate, Path.unlink])
def test_bad_shard_is_named_and_the_rest_loads(dataset_dir: Path, damage) -> None:
    bad = dataset_dir / "shard-000001.npz"
    damage(bad)
    with pytest.warns(UserWarning, match=r"shard-000001\.npz is unusable.*Fix: run the same collection"):
        data = load_trajectories(dataset_dir)
    assert sorted(data.episode_ids) == [0, 1, 2, 6, 7, 8, 9]
    assert len(data.bad_shards) == 1 and "shard-000001.npz" in data.bad_shards[0]
    with pytest.raises(ShardError, match=r"shard-000001\.npz"):
        load_trajectories(dataset_dir, strict=True)


def test_resume_sets_bad_shard_aside_and_recollects(dataset_dir: Path, make_episode) -> None:
    _truncate(dataset_dir / "shard-000002.npz")
    with pytest.warns(UserWarning, match=r"shard-000002\.npz is unusable"):
        writer = ShardWriter(dataset_dir, SETTINGS, 3)
    assert writer.done_ids == {0, 1, 2, 3, 4, 5, 9}
    assert (dataset_dir / "shard-000002.npz.bad").exists()
    for i in (6, 7, 8):
        writer.add(make_episode(i, 6 + i))
    writer.close()
    data = load_trajectories(dataset_dir, strict=True)
    assert sorted(data.episode_ids) == list(range(10))


def test_manifest_missing_or_garbled_names_the_fix(dataset_dir: Path) -> None:
    manifest = dataset_dir / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(ManifestError, match="rebuild_manifest"):
        load_trajectories(dataset_dir)
    manifest.unlink()
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_trajectories(dataset_dir)
    rebuilt = rebuild_manifest(dataset_dir, SETTINGS)
    assert len(rebuilt["shards"]) == 4
    assert sorted(load_trajectories(dataset_dir).episode_ids) == list(range(10))


def test_other_settings_refuse_to_resume(dataset_dir: Path) -> None:
    with pytest.raises(ValueError, match="kind: 'synthetic' -> 'other'"):
        ShardWriter(dataset_dir, {"kind": "other"}, 3)


def test_one_writer_per_folder(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, SETTINGS, 3):
        with pytest.raises(RuntimeError, match="another process"):
            ShardWriter(tmp_path, SETTINGS, 3)


def test_manifest_lists_counts_and_hashes(dataset_dir: Path) -> None:
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    assert [len(e["episodes"]) for e in manifest["shards"]] == [3, 3, 3, 1]
    assert sum(e["frames"] for e in manifest["shards"]) == sum(7 + i for i in range(10))
    assert all(len(e["sha256"]) == 64 and e["meta"][0]["policy"] == "synthetic" for e in manifest["shards"])
