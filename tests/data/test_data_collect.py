"""Collection on the real environments: training split only, deterministic, parallel, resumable."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ami_robot.data import (
    POLICY_KINDS,
    ClipDataset,
    CollectConfig,
    PlayConfig,
    collect,
    load_manifest,
    load_trajectories,
    plan_episode,
)
from ami_robot.envs import ACTION_HIGH

TINY = {"episode_steps": 3, "image_size": 32, "episodes_per_shard": 2}  # the bookkeeping, not the physics


def _same(a, b) -> None:
    order_a, order_b = np.argsort(a.episode_ids), np.argsort(b.episode_ids)
    assert list(a.episode_ids[order_a]) == list(b.episode_ids[order_b])
    for i, j in zip(order_a, order_b, strict=True):
        sa = slice(a.starts[i], a.starts[i] + a.lengths[i])
        sb = slice(b.starts[j], b.starts[j] + b.lengths[j])
        np.testing.assert_array_equal(a.frames[sa], b.frames[sb])
        np.testing.assert_array_equal(a.states[sa], b.states[sb])
        np.testing.assert_array_equal(a.actions[sa], b.actions[sb])
        assert a.meta[i] == b.meta[j]


def test_seeds_outside_the_training_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"seeds 9990 \.\. 10009 leave the training split"):
        CollectConfig(out_dir=str(tmp_path), seed=9990, episodes=20)
    with pytest.raises(ValueError, match="palette must be 'train'"):
        CollectConfig(out_dir=str(tmp_path), palette="heldout")
    with pytest.raises(ValueError, match="CollectConfig's own fields"):
        CollectConfig(out_dir=str(tmp_path), env_kwargs={"palette": "heldout"})
    with pytest.raises(ValueError, match="mix"):
        CollectConfig(out_dir=str(tmp_path), mix={"teleop": 1.0})
    CollectConfig(out_dir=str(tmp_path), seed=9980, episodes=20)  # the last training seed is 9,999


def test_plans_follow_the_mix_within_every_task() -> None:
    mix = {"expert_noisy": 0.5, "random": 0.3, "expert_clean": 0.2}
    cfg = CollectConfig(out_dir="unused", episodes=800, mix=mix)
    plans = [plan_episode(cfg, i) for i in range(800)]
    assert plans[5] == plan_episode(cfg, 5)
    assert [p["task"] for p in plans[:5]] == ["Reach", "Grasp", "Push", "PickPlace", "Reach"]
    assert [p["seed"] for p in plans[:3]] == [0, 1, 2]
    for task in cfg.tasks:
        kinds = [p["policy"] for p in plans if p["task"] == task]
        for kind, weight in mix.items():
            assert abs(kinds.count(kind) / len(kinds) - weight) < 0.02


def test_collect_in_parallel_then_resume_equals_one_process(tmp_path: Path) -> None:
    parallel = CollectConfig(out_dir=str(tmp_path / "par"), episodes=5, num_workers=2, **TINY)
    stats = collect(parallel)
    assert (stats.collected, stats.already, stats.frames) == (5, 0, 5 * 4)
    grown = CollectConfig(out_dir=str(tmp_path / "par"), episodes=8, num_workers=2, **TINY)
    stats = collect(grown)  # only the 3 missing episodes are collected
    assert (stats.collected, stats.already) == (3, 5)
    serial = collect(CollectConfig(out_dir=str(tmp_path / "one"), episodes=8, num_workers=0, **TINY))
    assert serial.collected == 8
    _same(load_trajectories(tmp_path / "par"), load_trajectories(tmp_path / "one"))

    data = load_trajectories(tmp_path / "par")
    assert data.frames.shape == (8 * 4, 32, 32, 3) and data.frames.std() > 0
    assert {m["task"] for m in data.meta} == {"Reach", "Grasp", "Push", "PickPlace"}
    assert all(m["seed"] == i for i, m in zip(data.episode_ids, data.meta, strict=True))
    assert np.all(np.abs(data.actions) <= np.array(ACTION_HIGH) + 1e-6)
    assert data.extras["object_pos"].shape == (8 * 4, 3) and (data.extras["object_pos"][:, 2] > 0).all()
    manifest = load_manifest(tmp_path / "par")
    assert manifest["collection"]["image_size"] == 32 and manifest["collection"]["palette"] == "train"
    clips = ClipDataset(data, clip_len=2)
    assert clips[0]["frames"].shape == (3, 32, 32, 3)

    with pytest.raises(ValueError, match="other settings"):
        collect(CollectConfig(out_dir=str(tmp_path / "par"), episodes=8, seed=1, **TINY))


_KILLABLE = """
import sys
from ami_robot.data import CollectConfig, collect
if __name__ == "__main__":
    collect(CollectConfig(out_dir=sys.argv[1], episodes=12, num_workers=1, episode_steps=3,
                          image_size=32, episodes_per_shard=2))
"""


def test_kill_9_then_resume_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(_KILLABLE)
    proc = subprocess.Popen([sys.executable, str(script), str(out)])
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            shards = list(out.glob("shard-*.npz")) if out.exists() else []
            if shards:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (out / "shard-000099.npz.tmp-12345").write_bytes(b"half a shard")  # as a kill mid-write leaves
    with pytest.warns(UserWarning, match="unfinished write"):
        stats = collect(CollectConfig(out_dir=str(out), episodes=12, num_workers=0, episode_steps=3,
                                      image_size=32, episodes_per_shard=2))
    assert stats.already >= 2 and stats.collected > 0 and stats.already + stats.collected == 12
    data = load_trajectories(out, strict=True)
    assert sorted(data.episode_ids) == list(range(12))  # each id exactly once


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_every_policy_kind_runs_within_bounds(tmp_path: Path, kind: str) -> None:
    cfg = CollectConfig(out_dir=str(tmp_path), episodes=2, tasks=("Grasp",), mix={kind: 1.0}, num_workers=0,
                        episode_steps=12, image_size=32, play=PlayConfig(release_prob=1.0, toggle_prob=0.5))
    collect(cfg)
    data = load_trajectories(tmp_path)
    assert [m["policy"] for m in data.meta] == [kind, kind]
    assert np.all(np.abs(data.actions) <= np.array(ACTION_HIGH) + 1e-6)
    assert np.abs(data.actions[:, :3]).max() > 0.005  # the arm was driven


def test_a_failing_episode_is_reported_and_the_rest_collected(tmp_path: Path, monkeypatch) -> None:
    from ami_robot.data import policies

    calls = {"n": 0}
    act = policies.RandomWalk.act

    def flaky(self, obs, info):
        calls["n"] += 1
        if calls["n"] == 5:  # the second step of the second episode
            raise FloatingPointError("simulated blow-up")
        return act(self, obs, info)

    monkeypatch.setattr(policies.RandomWalk, "act", flaky)
    cfg = CollectConfig(out_dir=str(tmp_path), episodes=3, mix={"random": 1.0}, num_workers=0, **TINY)
    with pytest.warns(UserWarning, match=r"episode 1 failed and is not stored \(step: FloatingPointError"):
        stats = collect(cfg)
    assert stats.collected == 2 and list(stats.failed) == [1]
    assert sorted(load_trajectories(tmp_path).episode_ids) == [0, 2]
    monkeypatch.undo()
    assert collect(cfg).collected == 1  # the resume retries it


def test_an_env_that_cannot_start_fails_every_episode_loudly(tmp_path: Path) -> None:
    bad = {"object_kind": "pyramid"}
    cfg = CollectConfig(out_dir=str(tmp_path), episodes=2, num_workers=0, env_kwargs=bad, **TINY)
    with pytest.warns(UserWarning, match="failed and is not stored \\(reset: ValueError"):
        stats = collect(cfg)
    assert stats.collected == 0 and sorted(stats.failed) == [0, 1]


def test_resume_refuses_changed_environment_code(tmp_path: Path, monkeypatch) -> None:
    from ami_robot.data import collection

    cfg = CollectConfig(out_dir=str(tmp_path), episodes=1, num_workers=0, **TINY)
    collect(cfg)
    assert load_manifest(tmp_path)["collection"]["envs_sha256"] == collection.envs_fingerprint()
    monkeypatch.setattr(collection, "envs_fingerprint", lambda: "0" * 64)
    with pytest.raises(ValueError, match="envs_sha256"):
        collect(CollectConfig(out_dir=str(tmp_path), episodes=2, num_workers=0, **TINY))
