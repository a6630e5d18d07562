"""Reward-free trajectory collection in the training split, in parallel, resumable.

    stats = collect(CollectConfig(out_dir="data/play", episodes=2000, num_workers=2))

Episode i is fully determined by i and the settings: task `tasks[i % len(tasks)]`, env seed
`seed + i`, a policy kind drawn from `mix` (stratified per task) and a policy generator seeded
by (seed, i). Worker count and interruptions therefore never change what episode i contains,
and a resumed run (same out_dir, any `episodes`) collects exactly the ids not yet stored.

Episodes run in rounds of one task: `num_workers` PlayEnv sub-environments of a Gymnasium
AsyncVectorEnv reset together and step in lock-step for that task's length, the data policy
running inside each worker. Finished episodes go to a ShardWriter (atomic shards + manifest).
Workers start with the "forkserver" method (they inherit no GL context, torch threads or locks),
so a script that calls `collect` needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

import ami_robot.envs
from ami_robot.data.lerobot_io import LeRobotWriter
from ami_robot.data.play_env import PlayEnv
from ami_robot.data.policies import POLICY_KINDS, PlayConfig
from ami_robot.data.shards import Episode
from ami_robot.data.writer import ShardWriter
from ami_robot.envs import TASK_SPECS

TRAIN_SEED_LIMIT = 10_000  # EVAL_PROTOCOL.md: training seeds are 0 .. 9,999; evaluation starts here
DEFAULT_MIX = {"expert_noisy": 0.45, "expert_then_random": 0.15, "expert_clean": 0.1, "random": 0.3}
_GOLDEN = 0.6180339887498949  # low-discrepancy sequence: mix fractions hold within every task


@dataclass(frozen=True)
class CollectConfig:
    """What to collect and where. The fields in `settings()` fix what each episode contains; the
    others (out_dir, episodes, episodes_per_shard, num_workers, compresslevel, start_method) may
    change between a run and its resumption."""

    out_dir: str  # dataset folder (shards + manifest.json); e.g. under /data/, which git ignores
    episodes: int = 2000  # total episode ids 0 .. episodes-1 (already stored ones are skipped)
    tasks: tuple[str, ...] = ("Reach", "Grasp", "Push", "PickPlace")  # episode i runs tasks[i % len]
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))  # policy kind -> weight
    image_size: int = 64  # px: frames are rendered and stored at the model's resolution
    seed: int = 0  # episode i uses env seed `seed + i`; all must be < 10,000 (the training split)
    palette: str = "train"  # object colours: the training palette only
    episodes_per_shard: int = 50  # a kill -9 loses at most this many finished episodes
    num_workers: int = 2  # worker processes (0: run in this process, for debugging)
    episode_steps: int | None = None  # actions per episode; None: each task's budget (TASK_SPECS)
    play: PlayConfig = field(default_factory=PlayConfig)  # noise and exploration knobs
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # more env arguments (object_kind, ...)
    compresslevel: int = 1  # deflate level of the shards (1: fast, most of the gain on rendered frames)
    start_method: str | None = "forkserver"  # multiprocessing context: workers never inherit GL or torch

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed < 0 or self.seed + self.episodes > TRAIN_SEED_LIMIT:
            raise ValueError(
                f"seeds {self.seed} .. {self.seed + self.episodes - 1} leave the training split: collection "
                f"uses seeds 0 .. {TRAIN_SEED_LIMIT - 1} only (EVAL_PROTOCOL.md; evaluation seeds start at "
                f"{TRAIN_SEED_LIMIT}). Lower `seed` or `episodes`."
            )
        if self.palette != "train":  # the training split's colours (EVAL_PROTOCOL.md)
            raise ValueError(f"palette must be 'train' (held-out is for evaluation): {self.palette}")
        reserved = {"image_size", "palette"} & set(self.env_kwargs)
        if reserved:
            raise ValueError(f"set {sorted(reserved)} through CollectConfig's own fields, not env_kwargs")
        unknown = [t for t in self.tasks if t not in TASK_SPECS]
        if not self.tasks or unknown:
            raise ValueError(f"tasks must be a non-empty subset of {sorted(TASK_SPECS)}: {list(self.tasks)}")
        bad = [k for k in self.mix if k not in POLICY_KINDS]
        if bad or any(w < 0 for w in self.mix.values()) or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix needs weights >= 0 (some > 0) over {POLICY_KINDS}, got {dict(self.mix)}")
        if self.episodes_per_shard < 1 or self.num_workers < 0:
            raise ValueError("episodes_per_shard must be >= 1 and num_workers >= 0")
        if self.episode_steps is not None and self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1 or None, got {self.episode_steps}")
        if not 0 <= self.compresslevel <= 9:
            raise ValueError(f"compresslevel must be in 0 .. 9, got {self.compresslevel}")

    def settings(self) -> dict[str, Any]:
        """What decides each episode's content, as JSON (stored in the manifest): the fields that do,
        and a fingerprint of the environments' code and assets (a resume must not mix versions)."""
        keep = ("tasks", "mix", "image_size", "seed", "palette", "episode_steps", "play", "env_kwargs")
        raw = {k: getattr(self, k) for k in keep}
        raw["envs_sha256"] = envs_fingerprint()
        raw["play"] = dataclasses.asdict(self.play)
        raw["mix"] = {k: float(v) for k, v in sorted(self.mix.items())}
        raw["env_kwargs"] = dict(self.env_kwargs)
        return json.loads(json.dumps(raw))  # tuples -> lists, so a reloaded manifest compares equal


def envs_fingerprint() -> str:
    """sha256 over the source and asset files of ami_robot.envs (names and contents)."""
    root = Path(ami_robot.envs.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".xml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def plan_episode(cfg: CollectConfig, i: int) -> dict[str, Any]:
    """Everything that decides episode i: id, task, env seed, policy kind, steps, policy rng seed."""
    task = cfg.tasks[i % len(cfg.tasks)]
    kinds = [k for k in POLICY_KINDS if cfg.mix.get(k, 0) > 0]
    weights = np.array([cfg.mix[k] for k in kinds], dtype=np.float64)
    u = ((i // len(cfg.tasks)) * _GOLDEN + 0.5 * _GOLDEN) % 1.0
    pick = int(np.searchsorted(np.cumsum(weights) / weights.sum(), u, side="right"))
    kind = kinds[min(pick, len(kinds) - 1)]
    return {
        "id": i,
        "task": task,
        "seed": cfg.seed + i,
        "policy": kind,
        "steps": cfg.episode_steps or TASK_SPECS[task].budget,
        "rng": [cfg.seed, i],
    }


@dataclass(frozen=True)
class CollectStats:
    """What a call of `collect` did."""

    collected: int  # episodes collected by this call
    already: int  # episodes found stored (resumed)
    frames: int  # frames collected by this call
    seconds: float  # wall time of the collection loop (workers started, shards written)
    success: dict[str, float]  # "task/policy" -> fraction of collected episodes ending in task success
    failed: dict[int, str] = field(default_factory=dict)  # id -> error; not stored, retried on resume

    @property
    def episodes_per_s(self) -> float:
        return self.collected / self.seconds if self.seconds > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _rounds(plans: list[dict[str, Any]], width: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of up to `width` episodes of one task, lowest pending id first (so roughly id order)."""
    queues: dict[str, deque[dict[str, Any]]] = {}
    for plan in plans:
        queues.setdefault(plan["task"], deque()).append(plan)
    while any(queues.values()):
        task = min((q[0]["id"], t) for t, q in queues.items() if q)[1]
        queue = queues[task]
        yield [queue.popleft() for _ in range(min(width, len(queue)))]


def make_vector_env(cfg: CollectConfig) -> VectorEnv:
    """The PlayEnv workers: AsyncVectorEnv over num_workers processes (SyncVectorEnv for 0)."""
    env_kwargs = {**cfg.env_kwargs, "image_size": cfg.image_size, "palette": cfg.palette}
    fns = [partial(PlayEnv, j, env_kwargs, cfg.play) for j in range(max(1, cfg.num_workers))]
    if cfg.num_workers == 0:
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    return AsyncVectorEnv(fns, context=cfg.start_method, autoreset_mode=AutoresetMode.DISABLED)


def _run_round(vec: VectorEnv, batch: list[dict[str, Any]]) -> tuple[list[Episode], dict[int, str]]:
    """Reset the first len(batch) workers with their plans and step them to the end.

    Returns the finished episodes and, for episodes whose env raised, id -> error (they are dropped).
    """
    n = vec.num_envs
    mask = np.zeros(n, dtype=bool)
    mask[: len(batch)] = True
    obs, info = vec.reset(options={"plans": dict(enumerate(batch)), "reset_mask": mask})
    frames = [[obs["pixels"][j]] for j in range(len(batch))]
    states = [[obs["state"][j]] for j in range(len(batch))]
    objects = [[info["object_pos"][j]] for j in range(len(batch))]
    actions: list[list[np.ndarray]] = [[] for _ in batch]
    success = [False] * len(batch)
    errors = {plan["id"]: str(info["error"][j]) for j, plan in enumerate(batch) if info["error"][j]}
    idle = np.zeros(n, dtype=np.int64)
    for _ in range(max(plan["steps"] for plan in batch)):
        if len(errors) == len(batch):
            break
        obs, _, _, _, step_info = vec.step(idle)
        for j, plan in enumerate(batch):
            if step_info["error"][j]:
                errors[plan["id"]] = str(step_info["error"][j])
            if step_info["active"][j]:
                frames[j].append(obs["pixels"][j])
                states[j].append(obs["state"][j])
                actions[j].append(step_info["action"][j])
                objects[j].append(step_info["object_pos"][j])
                success[j] = bool(step_info["success"][j])
    episodes = []
    for j, plan in enumerate(batch):
        if plan["id"] in errors:
            continue
        meta = {
            "task": plan["task"], "seed": plan["seed"], "policy": plan["policy"], "steps": len(actions[j]),
            "success": success[j], "object_kind": str(info["object_kind"][j]),
            "object_size": float(info["object_size"][j]),
            "object_color": [round(float(c), 4) for c in info["object_color"][j]],
            "goal_realised": bool(info["goal_realised"][j]),
        }
        episodes.append(Episode(
            id=plan["id"], frames=np.stack(frames[j]), states=np.stack(states[j]).astype(np.float32),
            actions=np.stack(actions[j]).astype(np.float32), meta=meta,
            extras={"object_pos": np.stack(objects[j]).astype(np.float32)},  # privileged, for diagnostics
        ))
    return episodes, errors


OUT_FORMATS = ("shards", "lerobot")  # what `collect` writes: our resumable shards, or a LeRobotDataset


def open_writer(cfg: CollectConfig, out_format: str = "shards") -> ShardWriter | LeRobotWriter:
    """The writer of `out_format`: a ShardWriter (resumes), or a LeRobotWriter (a new folder, v3)."""
    if out_format == "shards":
        return ShardWriter(cfg.out_dir, cfg.settings(), cfg.episodes_per_shard, cfg.compresslevel)
    if out_format == "lerobot":
        return LeRobotWriter(cfg.out_dir, cfg.settings(), views=cfg.env_kwargs.get("views", ("exterior",)))
    raise ValueError(f"out_format must be one of {', '.join(OUT_FORMATS)}, got {out_format!r}")


def collect(cfg: CollectConfig, progress: bool = False, out_format: str = "shards") -> CollectStats:
    """Collect episodes 0 .. cfg.episodes-1 into cfg.out_dir, skipping those already stored there.

    out_format "lerobot" writes a new LeRobotDataset folder instead of shards (needs the `[lerobot]`
    extra; no resume: ami_robot.data.lerobot_io)."""
    start = time.perf_counter()
    collected = frames = 0
    outcomes: dict[str, list[bool]] = {}
    failed: dict[int, str] = {}
    with open_writer(cfg, out_format) as writer:
        done = writer.done_ids
        todo = [plan_episode(cfg, i) for i in range(cfg.episodes) if i not in done]
        already = cfg.episodes - len(todo)
        if todo:
            vec = make_vector_env(cfg)
            bar = _progress_bar(len(todo), progress)
            try:
                for batch in _rounds(todo, vec.num_envs):
                    episodes, errors = _run_round(vec, batch)
                    for ep_id, error in errors.items():
                        warnings.warn(f"episode {ep_id} failed and is not stored ({error})", stacklevel=2)
                    failed.update(errors)
                    for ep in episodes:
                        writer.add(ep)
                        collected += 1
                        frames += len(ep.frames)
                        key = f"{ep.meta['task']}/{ep.meta['policy']}"
                        outcomes.setdefault(key, []).append(ep.meta["success"])
                    if bar is not None:
                        bar.update(len(batch))
            finally:
                if bar is not None:
                    bar.close()
                vec.close()
    success = {k: float(np.mean(v)) for k, v in sorted(outcomes.items())}
    return CollectStats(collected, already, frames, time.perf_counter() - start, success, failed)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="ep", desc="collect")
