"""Torch datasets over a collected folder: action-conditioned clips, and frames for encoder pretraining.

Every shard is read once, checked against the manifest's sha256 and decoded into one in-memory
array per field (64 px frames cost 12 KiB each: 200k frames ~ 2.4 GiB). A bad shard is named in a
warning and skipped; the rest still loads. DataLoader workers forked afterwards share the arrays.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ami_robot.data.actions import ACTION_DIM, STATE_DIM, actions_from_states, compose_actions
from ami_robot.data.lerobot_io import is_lerobot_dataset, read_lerobot
from ami_robot.data.shards import ShardError, load_manifest, read_shard

ActionMode = Literal["states", "commanded"]
EPISODE_ID_STRIDE = 10_000_000  # concat_trajectories: the k-th folder's episode ids start at k * this


@dataclass(frozen=True)
class Trajectories:
    """Every usable episode of a dataset folder, concatenated along time.

    Episode e owns frames [starts[e], starts[e] + lengths[e]); `actions[f]` is the commanded action
    taken at frame f (zeros at the last frame of each episode, where no action follows).
    """

    frames: np.ndarray  # (F, H, W, 3) uint8
    states: np.ndarray  # (F, 7) float32
    actions: np.ndarray  # (F, 7) float32, aligned with frames
    starts: np.ndarray  # (E,) int64
    lengths: np.ndarray  # (E,) int64, frames per episode (steps + 1)
    episode_ids: np.ndarray  # (E,) int64
    meta: list[dict[str, Any]]  # per-episode task, seed, policy, success, ...
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (F, ...), e.g. object_pos
    bad_shards: list[str] = field(default_factory=list)  # files that were skipped, with the reason
    # What was used and what was skipped, for model cards (`usage`): manifest entries as
    # {"file", "sha256", "episodes": [ids]} (+ "reason" when skipped), and repeated episode ids.
    shards_used: list[dict[str, Any]] = field(default_factory=list)
    shards_skipped: list[dict[str, Any]] = field(default_factory=list)
    repeats_skipped: list[int] = field(default_factory=list)
    root: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ids)

    def usage(self) -> dict[str, Any]:
        """The data a model was trained on, for its card: folder, episodes and shards used and
        skipped, each shard with its sha256 (the manifest's, which the used ones matched)."""
        lost = sum(len(s["episodes"]) for s in self.shards_skipped)  # repeats are copies, not lost
        return {"dir": self.root, "episodes_used": self.num_episodes, "episodes_skipped": lost,
                "shards_used": self.shards_used, "shards_skipped": self.shards_skipped,
                "repeated_episodes_skipped": self.repeats_skipped}

    @property
    def views(self) -> int:
        """Camera views per frame: frames stack square views top to bottom (envs.stack_views)."""
        return self.frames.shape[1] // self.frames.shape[2]


def load_trajectories(
    root: str | os.PathLike[str],
    strict: bool = False,
    episode_filter: Callable[[dict[str, Any]], bool] | None = None,
) -> Trajectories:
    """Load every shard listed in `root/manifest.json`.

    A missing, truncated or corrupted shard, or an episode stored twice, raises ShardError when
    `strict`, else it is named in a warning (with the fix) and skipped; `Trajectories.usage()` says
    what was used and skipped. `episode_filter(meta) -> bool` keeps a subset of episodes,
    e.g. `lambda m: m["task"] == "Reach"`.

    A LeRobotDataset folder (meta/info.json: ami_robot.data.lerobot_io, the `[lerobot]` extra) is
    read instead when `root` holds one; it has no shards, so nothing is skipped and `strict` is moot.
    """
    root = Path(root)
    if is_lerobot_dataset(root):
        return Trajectories(**read_lerobot(root, episode_filter))
    manifest = load_manifest(root)
    capacity = sum(int(entry["frames"]) for entry in manifest["shards"])
    frames = states = actions = None
    extras: dict[str, np.ndarray] = {}
    starts, lengths, ids, metas, bad = [], [], [], [], []
    used: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    repeats: list[int] = []
    seen: set[int] = set()
    cursor = 0
    for entry in manifest["shards"]:
        path = root / entry["file"]
        try:
            shard = read_shard(path, entry["sha256"])
            if frames is not None and shard.frames.shape[1:] != frames.shape[1:]:
                msg = f"frames are {shard.frames.shape[1:]}, earlier shards {frames.shape[1:]}"
                raise ShardError(path, msg)
            if frames is not None and sorted(shard.extras) != sorted(extras):
                raise ShardError(path, f"extras {sorted(shard.extras)}, earlier shards {sorted(extras)}")
        except ShardError as exc:
            if strict:
                raise
            warnings.warn(str(exc), stacklevel=2)
            bad.append(f"{path}: {exc.reason}")
            skipped.append({"file": entry["file"], "sha256": entry["sha256"],
                            "episodes": [int(i) for i in entry.get("episodes", [])], "reason": exc.reason})
            continue
        if frames is None:  # allocate once; pages of skipped capacity are never touched
            frames = np.empty((capacity, *shard.frames.shape[1:]), dtype=np.uint8)
            states = np.empty((capacity, STATE_DIM), dtype=np.float32)
            actions = np.zeros((capacity, ACTION_DIM), dtype=np.float32)
            extras = {k: np.empty((capacity, *v.shape[1:]), v.dtype) for k, v in shard.extras.items()}
        kept: list[int] = []
        for ep in shard.episodes():
            if ep.id in seen:
                if strict:
                    raise ShardError(path, f"episode {ep.id} appears again (an earlier shard holds it)")
                warnings.warn(f"episode {ep.id} appears again in {path}; the repeat is skipped", stacklevel=2)
                repeats.append(int(ep.id))
                continue
            if episode_filter is not None and not episode_filter(ep.meta):
                continue
            n = len(ep.frames)
            frames[cursor : cursor + n] = ep.frames
            states[cursor : cursor + n] = ep.states
            actions[cursor : cursor + n - 1] = ep.actions
            actions[cursor + n - 1] = 0.0
            for name, value in ep.extras.items():
                extras[name][cursor : cursor + n] = value
            starts.append(cursor)
            lengths.append(n)
            ids.append(ep.id)
            metas.append(ep.meta)
            seen.add(ep.id)
            kept.append(int(ep.id))
            cursor += n
        used.append({"file": entry["file"], "sha256": entry["sha256"], "episodes": kept})
    if frames is None:
        raise ShardError(root, f"no usable shard among {len(manifest['shards'])} listed")
    return Trajectories(
        frames=frames[:cursor],
        states=states[:cursor],
        actions=actions[:cursor],
        starts=np.asarray(starts, dtype=np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        episode_ids=np.asarray(ids, dtype=np.int64),
        meta=metas,
        extras={name: value[:cursor] for name, value in extras.items()},
        bad_shards=bad,
        shards_used=used,
        shards_skipped=skipped,
        repeats_skipped=repeats,
        root=str(root),
    )


def concat_trajectories(parts: Sequence[Trajectories]) -> Trajectories:
    """Several loaded folders as one dataset, in order: the same frame shape (views, image size) and
    extras, and no shard in two of them. Episode ids are a folder's own (every collection counts
    from 0), so the k-th folder's become k * EPISODE_ID_STRIDE + id; each shard entry of the usage
    record names its folder and keeps the folder's ids."""
    if not parts:
        raise ValueError("concat_trajectories needs at least one dataset")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for part in parts[1:]:
        if part.frames.shape[1:] != first.frames.shape[1:]:
            raise ValueError(f"{part.root} has frames {part.frames.shape[1:]} but {first.root} has "
                             f"{first.frames.shape[1:]}: collect both with the same views and image_size")
        if sorted(part.extras) != sorted(first.extras):
            raise ValueError(f"{part.root} records extras {sorted(part.extras)} but {first.root} records "
                             f"{sorted(first.extras)}")
    seen: dict[str, str] = {}
    for part in parts:
        for entry in part.shards_used:
            if entry["sha256"] in seen:
                raise ValueError(f"{part.root}/{entry['file']} is the same shard as one in "
                                 f"{seen[entry['sha256']]}: each folder may be given once")
            seen[entry["sha256"]] = part.root
    ids = np.concatenate([k * EPISODE_ID_STRIDE + p.episode_ids for k, p in enumerate(parts)])
    offsets = np.cumsum([0] + [len(p.frames) for p in parts[:-1]])

    def named(entries: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
        return [{**e, "file": str(Path(root) / e["file"])} for e in entries]

    return Trajectories(
        frames=np.concatenate([p.frames for p in parts]),
        states=np.concatenate([p.states for p in parts]),
        actions=np.concatenate([p.actions for p in parts]),
        starts=np.concatenate([p.starts + o for p, o in zip(parts, offsets, strict=True)]),
        lengths=np.concatenate([p.lengths for p in parts]),
        episode_ids=ids,
        meta=[m for p in parts for m in p.meta],
        extras={k: np.concatenate([p.extras[k] for p in parts]) for k in first.extras},
        bad_shards=[b for p in parts for b in p.bad_shards],
        shards_used=[e for p in parts for e in named(p.shards_used, p.root)],
        shards_skipped=[e for p in parts for e in named(p.shards_skipped, p.root)],
        repeats_skipped=[r for p in parts for r in p.repeats_skipped],
        root=" + ".join(p.root for p in parts),
    )


def _window_starts(data: Trajectories, span: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Global frame indices where a window of `span` + 1 frames fits inside one episode, and its episode."""
    starts, owners = [], []
    for e, (lo, n) in enumerate(zip(data.starts, data.lengths, strict=True)):
        local = np.arange(0, int(n) - span, stride, dtype=np.int64)
        starts.append(lo + local)
        owners.append(np.full(len(local), e, dtype=np.int64))
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts), np.concatenate(owners)


class _WindowDataset(Dataset):
    """Shared indexing: fixed-length windows of frames, every `frame_skip` frames, within episodes."""

    def __init__(self, source: str | os.PathLike[str] | Trajectories, span: int, stride: int, **load_kw: Any):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.data = source if isinstance(source, Trajectories) else load_trajectories(source, **load_kw)
        self._starts, self._owners = _window_starts(self.data, span, stride)
        if len(self._starts) == 0:
            longest = int(self.data.lengths.max()) if self.data.num_episodes else 0
            raise ValueError(f"no episode holds a window of {span + 1} frames (the longest has {longest})")

    def __len__(self) -> int:
        return len(self._starts)

    def _indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} windows")
        return idx % len(self)

    def iter_batches(
        self, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False
    ) -> Iterator[Any]:
        """One epoch of vectorised batches (no per-item Python work), in a seeded order."""
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for i in range(0, stop, batch_size):
            yield self.get_batch(order[i : i + batch_size])

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Any:
        raise NotImplementedError


class ClipDataset(_WindowDataset):
    """Clips of `clip_len` actions between `clip_len + 1` frames, taking every `frame_skip`-th frame.

    An item is a dict: frames uint8 (T+1, H, W, 3), states float32 (T+1, 7), actions float32 (T, 7),
    episode (id), start (frame index within the episode) and the dataset's per-frame extras at the
    kept frames (e.g. object_pos (T+1, 3), privileged: for probes and diagnostics).
    Actions are, by `action_mode`:
      "states"    (default, the V-JEPA 2-AC convention) computed from consecutive kept states;
      "commanded" the env actions actually sent, composed over the `frame_skip` steps of each gap.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Trajectories,
        clip_len: int,
        frame_skip: int = 1,
        action_mode: ActionMode = "states",
        stride: int = 1,
        **load_kw: Any,
    ) -> None:
        if clip_len < 1 or frame_skip < 1:
            raise ValueError(f"clip_len and frame_skip must be >= 1, got {clip_len} and {frame_skip}")
        if action_mode not in ("states", "commanded"):
            raise ValueError(f"action_mode must be 'states' or 'commanded', got {action_mode!r}")
        self.clip_len, self.frame_skip, self.action_mode = clip_len, frame_skip, action_mode
        super().__init__(source, clip_len * frame_skip, stride, **load_kw)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Clips for a batch of indices, stacked: frames (B, T+1, H, W, 3), actions (B, T, 7), ..."""
        idx = self._indices(indices)
        t, s = self.clip_len, self.frame_skip
        start = self._starts[idx]  # (B,)
        kept = start[:, None] + s * np.arange(t + 1)  # (B, T+1) global frame indices
        states = self.data.states[kept]  # (B, T+1, 7)
        if self.action_mode == "states":
            actions = actions_from_states(states)  # (B, T, 7)
        else:
            steps = start[:, None] + np.arange(t * s)  # (B, T*s)
            actions = compose_actions(self.data.actions[steps], s)  # (B, T, 7)
        owner = self._owners[idx]
        return {
            "frames": torch.from_numpy(self.data.frames[kept]),
            "states": torch.from_numpy(states),
            "actions": torch.from_numpy(actions),
            "episode": torch.from_numpy(self.data.episode_ids[owner]),
            "start": torch.from_numpy(start - self.data.starts[owner]),
            **{name: torch.from_numpy(value[kept]) for name, value in self.data.extras.items()},
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.get_batch([index]).items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """What a DataLoader fetches per batch: one vectorised gather, split into items for collate."""
        batch = self.get_batch(indices)
        return [{k: v[j] for k, v in batch.items()} for j in range(len(indices))]


class FrameDataset(_WindowDataset):
    """Frames for encoder pretraining: an item is uint8 (num_frames, H, W, 3), every `frame_skip`-th frame.

    num_frames=1 gives single frames (still with the leading time axis); 2 gives one V-JEPA tubelet.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Trajectories,
        num_frames: int = 1,
        frame_skip: int = 1,
        stride: int = 1,
        **load_kw: Any,
    ) -> None:
        if num_frames < 1 or frame_skip < 1:
            raise ValueError(f"num_frames and frame_skip must be >= 1, got {num_frames} and {frame_skip}")
        self.num_frames, self.frame_skip = num_frames, frame_skip
        super().__init__(source, (num_frames - 1) * frame_skip, stride, **load_kw)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Frames for a batch of indices: uint8 (B, num_frames, H, W, 3)."""
        idx = self._indices(indices)
        kept = self._starts[idx][:, None] + self.frame_skip * np.arange(self.num_frames)  # (B, T)
        return torch.from_numpy(self.data.frames[kept])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get_batch([index])[0]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        return list(self.get_batch(indices))
