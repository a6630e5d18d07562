"""Data-layer benchmark: collection speed (1 and 2 workers, 64 px), what the data contains, dataset speed.

    .venv/bin/python benchmarks/bench_data.py [--episodes 48] [--out /tmp/bench_data] [--workers 1 2]

Collection figures include starting the workers and writing the shards. The composition table
reads the privileged object position stored with every frame: how often objects were lifted,
pushed across the table, or never touched, per task and policy kind.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ami_robot.data import ClipDataset, CollectConfig, FrameDataset, collect, load_trajectories
from ami_robot.data.dataset import Trajectories

LIFT = 0.03  # m above the object's first height: a lift
MOVE = 0.02  # m of horizontal travel while not lifted: a push


def bench_collect(out: Path, episodes: int, workers: int) -> Path:
    root = out / f"w{workers}"
    shutil.rmtree(root, ignore_errors=True)
    cfg = CollectConfig(out_dir=str(root), episodes=episodes, num_workers=workers, image_size=64)
    stats = collect(cfg)
    size = sum(p.stat().st_size for p in root.glob("shard-*.npz"))
    print(
        f"collect  workers={workers}: {stats.collected} episodes, {stats.frames} frames in "
        f"{stats.seconds:.1f} s -> {stats.episodes_per_s:.2f} episodes/s, {stats.frames_per_s:.0f} frames/s; "
        f"{size / stats.frames / 1024:.2f} KiB/frame on disk (raw 12.0)"
    )
    return root


def same_episodes(a: Trajectories, b: Trajectories) -> bool:
    """Whether both hold the same episode ids with identical frames, states and actions."""
    if sorted(a.episode_ids) != sorted(b.episode_ids):
        return False
    where = {int(i): e for e, i in enumerate(b.episode_ids)}
    for e, i in enumerate(a.episode_ids):
        f = where[int(i)]
        sa = slice(a.starts[e], a.starts[e] + a.lengths[e])
        sb = slice(b.starts[f], b.starts[f] + b.lengths[f])
        for name in ("frames", "states", "actions"):
            if not np.array_equal(getattr(a, name)[sa], getattr(b, name)[sb]):
                return False
    return True


def composition(data: Trajectories) -> None:
    print("\ncomposition (per task / policy): episodes, task success at the end, lifted, pushed, untouched")
    rows: dict[str, list[tuple[bool, bool, bool, bool]]] = {}
    obj = data.extras["object_pos"]
    for e, meta in enumerate(data.meta):
        track = obj[data.starts[e] : data.starts[e] + data.lengths[e]]  # (L+1, 3)
        lifted = bool((track[:, 2] - track[0, 2] > LIFT).any())
        travel = float(np.linalg.norm(track[-1, :2] - track[0, :2]))
        pushed = not lifted and travel > MOVE
        untouched = float(np.abs(track - track[0]).max()) < 0.002
        key = f"{meta['task']}/{meta['policy']}"
        rows.setdefault(key, []).append((meta["success"], lifted, pushed, untouched))
    for key, values in sorted(rows.items()):
        arr = np.array(values, dtype=float)
        s, li, pu, un = arr.mean(0)
        print(f"  {key:30s} {len(arr):4d}  success {s:4.0%}  lifted {li:4.0%}  pushed {pu:4.0%}  "
              f"untouched {un:4.0%}")


def bench_dataset(root: Path) -> None:
    t = time.perf_counter()
    data = load_trajectories(root)
    seconds = time.perf_counter() - t
    print(f"\nload     {data.num_episodes} episodes, {data.num_frames} frames in {seconds:.2f} s")
    for mode in ("states", "commanded"):
        clips = ClipDataset(data, clip_len=4, frame_skip=1, action_mode=mode)
        n = min(2000, len(clips))
        t = time.perf_counter()
        for i in np.random.default_rng(0).integers(0, len(clips), n):
            clips[int(i)]
        per_item = n / (time.perf_counter() - t)
        t, seen = time.perf_counter(), 0
        for batch in clips.iter_batches(256, seed=0):
            seen += len(batch["frames"])
        batched = seen / (time.perf_counter() - t)
        print(f"clips    T=4 skip=1 actions={mode:9s}: {per_item:7.0f} clips/s one by one, "
              f"{batched:8.0f} clips/s batched ({len(clips)} clips)")
    clips = ClipDataset(data, clip_len=4, frame_skip=2)
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        loader = DataLoader(clips, batch_size=64, shuffle=True, num_workers=0)
        t, seen = time.perf_counter(), 0
        for batch in loader:
            seen += len(batch["frames"])
        rate = seen / (time.perf_counter() - t)
        print(f"loader   T=4 skip=2 DataLoader(batch 64), torch threads={threads}: {rate:.0f} clips/s")
    torch.set_num_threads(default_threads)
    frames = FrameDataset(data, num_frames=2)
    t, seen = time.perf_counter(), 0
    for batch in frames.iter_batches(512, seed=0):
        seen += len(batch)
    print(f"frames   2-frame tubelets batched: {seen / (time.perf_counter() - t):.0f} items/s")


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_data"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          f"(other jobs share the CPUs); torch {torch.__version__}")
    roots = [bench_collect(args.out, args.episodes, w) for w in args.workers]
    datasets = [load_trajectories(r) for r in roots]
    same = all(same_episodes(d, datasets[0]) for d in datasets[1:])
    print(f"identical episodes (by id) across worker counts: {same}")
    composition(datasets[-1])
    bench_dataset(roots[-1])


if __name__ == "__main__":
    main()
