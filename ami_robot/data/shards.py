"""The on-disk format of a trajectory dataset: shards of whole episodes plus a manifest.

A dataset is a folder:

    manifest.json        {"format", "version", "collection": {...}, "shards": [entry, ...]}
    shard-000000.npz     several whole episodes, concatenated along time
    shard-000001.npz     ...

A shard is a plain `.npz` (a zip of `.npy` members, readable with `np.load`) holding

    frames        uint8   (F, H, W, 3)   every frame of every episode, episode after episode
    states        float32 (F, 7)         EE xyz, EE extrinsic xyz Euler, gripper in [0, 1]
    actions       float32 (F - E, 7)     the commanded env actions (one fewer than frames per episode)
    frame_offsets int64   (E + 1,)       episode e owns frames [offsets[e], offsets[e + 1])
    episode_ids   int64   (E,)
    meta          str     ()             JSON list of per-episode dicts (task, seed, policy, ...)
    extra.<name>  any     (F, ...)       optional per-frame extras (e.g. extra.object_pos, privileged)

A manifest entry is {"file", "episodes": [ids], "frames", "bytes", "sha256", "meta": [dicts]}.
Every file is written to a temporary name, fsynced and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ami_robot.data.actions import ACTION_DIM, STATE_DIM

FORMAT = "ami-robot-trajectories"
VERSION = 1
MANIFEST = "manifest.json"
SHARD_GLOB = "shard-*.npz"
TMP_MARK = ".tmp-"  # temporary files are "<final name>.tmp-<pid>"
_SHARD_RE = re.compile(r"^shard-(\d{6,})\.npz$")
_KEYS = ("frames", "states", "actions", "frame_offsets", "episode_ids", "meta")


class ShardError(RuntimeError):
    """A shard that cannot be used: missing, truncated, corrupted or inconsistent."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"shard {self.path} is unusable: {reason}. Fix: run the same collection again with "
            f"out_dir={self.path.parent}; it sets the bad shard aside and re-collects its episodes "
            f"(or delete the file and its manifest entry by hand)."
        )


class ManifestError(RuntimeError):
    """A manifest that is missing, unreadable or of another format."""


@dataclass(frozen=True)
class Episode:
    """One reward-free trajectory: L actions between L + 1 frames and states."""

    id: int  # global episode index within the collection
    frames: np.ndarray  # (L+1, H, W, 3) uint8
    states: np.ndarray  # (L+1, 7) float32
    actions: np.ndarray  # (L, 7) float32, the commanded env actions
    meta: dict[str, Any] = field(default_factory=dict)  # task, seed, policy, success, ...
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (L+1, ...) per-frame arrays

    def __post_init__(self) -> None:
        f, s, a = self.frames, self.states, self.actions
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"episode {self.id}: frames must be uint8 (L+1, H, W, 3): {f.dtype} {f.shape}")
        if s.shape != (len(f), STATE_DIM):
            raise ValueError(f"episode {self.id}: states must be ({len(f)}, {STATE_DIM}), not {s.shape}")
        if a.shape != (len(f) - 1, ACTION_DIM):
            raise ValueError(f"episode {self.id}: actions must be ({len(f) - 1}, 7), not {a.shape}")
        if len(f) < 2:
            raise ValueError(f"episode {self.id}: needs at least one step, got {len(f)} frame(s)")
        for name, value in self.extras.items():
            if len(value) != len(f) or not name.isidentifier():
                raise ValueError(f"episode {self.id}: extra {name!r} needs {len(f)} rows, got {value.shape}")

    @property
    def steps(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class ShardData:
    """The decoded arrays of one shard (see the module docstring for shapes)."""

    frames: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    frame_offsets: np.ndarray
    episode_ids: np.ndarray
    meta: list[dict[str, Any]]
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (F, ...)

    def episodes(self) -> Iterator[Episode]:
        for e, ep_id in enumerate(self.episode_ids):
            lo, hi = int(self.frame_offsets[e]), int(self.frame_offsets[e + 1])
            yield Episode(
                id=int(ep_id),
                frames=self.frames[lo:hi],
                states=self.states[lo:hi],
                actions=self.actions[lo - e : hi - e - 1],  # each earlier episode has one action fewer
                meta=self.meta[e],
                extras={name: value[lo:hi] for name, value in self.extras.items()},
            )


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.npz"


def shard_index(name: str) -> int | None:
    """The number in "shard-000042.npz", or None for any other name."""
    m = _SHARD_RE.match(name)
    return int(m.group(1)) if m else None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete: temp file, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def encode_shard(episodes: Sequence[Episode], compresslevel: int = 1) -> bytes:
    """Serialise whole episodes into the bytes of one `.npz` shard (deflate at `compresslevel`)."""
    if not episodes:
        raise ValueError("a shard needs at least one episode")
    sizes = {ep.frames.shape[1:] for ep in episodes}
    if len(sizes) != 1:
        raise ValueError(f"all episodes of a shard must share one frame size, got {sorted(sizes)}")
    names = {tuple(sorted(ep.extras)) for ep in episodes}
    if len(names) != 1:
        raise ValueError(f"all episodes of a shard must have the same extras, got {sorted(names)}")
    lengths = np.array([len(ep.frames) for ep in episodes], dtype=np.int64)
    arrays = {
        "frames": np.concatenate([ep.frames for ep in episodes]),
        "states": np.concatenate([ep.states for ep in episodes]).astype(np.float32),
        "actions": np.concatenate([ep.actions for ep in episodes]).astype(np.float32),
        "frame_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "episode_ids": np.array([ep.id for ep in episodes], dtype=np.int64),
        "meta": np.array(json.dumps([ep.meta for ep in episodes])),
    }
    for name in sorted(episodes[0].extras):
        arrays[f"extra.{name}"] = np.concatenate([ep.extras[name] for ep in episodes])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
    return buf.getvalue()


def write_shard(path: Path, episodes: Sequence[Episode], compresslevel: int = 1) -> dict[str, Any]:
    """Write a shard atomically and return its manifest entry."""
    data = encode_shard(episodes, compresslevel)
    atomic_write_bytes(path, data)
    return {
        "file": Path(path).name,
        "episodes": [int(ep.id) for ep in episodes],
        "frames": int(sum(len(ep.frames) for ep in episodes)),
        "bytes": len(data),
        "sha256": sha256_bytes(data),
        "meta": [ep.meta for ep in episodes],
    }


def decode_shard(path: Path, data: bytes, sha256: str | None = None) -> ShardData:
    """Decode and check the bytes of a shard; any problem raises ShardError naming `path`."""
    if sha256 is not None and sha256_bytes(data) != sha256:
        found = sha256_bytes(data)
        raise ShardError(path, f"sha256 mismatch (manifest {sha256[:12]}..., file {found[:12]}...)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise ShardError(path, f"missing arrays {missing}")
            arrays = {k: z[k] for k in _KEYS}
            extras = {k.removeprefix("extra."): z[k] for k in z.files if k.startswith("extra.")}
        meta = json.loads(str(arrays.pop("meta")))
    except ShardError:
        raise
    except Exception as exc:  # zip, zlib, npy-header and JSON errors all mean the same: a bad file
        raise ShardError(path, f"cannot decode ({type(exc).__name__}: {exc})") from exc
    shard = ShardData(meta=meta, extras=extras, **arrays)
    _check_consistent(path, shard)
    return shard


def _check_consistent(path: Path, s: ShardData) -> None:
    n_ep, n_frames = len(s.episode_ids), len(s.frames)
    off = s.frame_offsets
    problems = []
    if s.frames.dtype != np.uint8 or s.frames.ndim != 4 or s.frames.shape[-1] != 3:
        problems.append(f"frames {s.frames.dtype} {s.frames.shape}")
    if s.states.shape != (n_frames, STATE_DIM):
        problems.append(f"states {s.states.shape} for {n_frames} frames")
    if s.actions.shape != (n_frames - n_ep, ACTION_DIM):
        problems.append(f"actions {s.actions.shape} for {n_frames} frames in {n_ep} episodes")
    if off.shape != (n_ep + 1,) or off[0] != 0 or off[-1] != n_frames or np.any(np.diff(off) < 2):
        problems.append("frame_offsets do not partition the frames into episodes of >= 2 frames")
    if len(s.meta) != n_ep:
        problems.append(f"{len(s.meta)} metadata records for {n_ep} episodes")
    for name, value in s.extras.items():
        if len(value) != n_frames:
            problems.append(f"extra {name} has {len(value)} rows for {n_frames} frames")
    if problems:
        raise ShardError(path, "inconsistent arrays: " + "; ".join(problems))


def read_shard(path: Path, sha256: str | None = None) -> ShardData:
    """Read, verify (against `sha256` when given) and decode one shard."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShardError(path, f"cannot read ({exc.strerror or exc})") from exc
    return decode_shard(path, data, sha256)


def empty_manifest(collection: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "collection": collection or {}, "shards": []}


def load_manifest(root: Path) -> dict[str, Any]:
    """Read `root/manifest.json`; a missing or malformed manifest raises ManifestError with the fix."""
    path = Path(root) / MANIFEST
    fix = f"Fix: `python -c \"from ami_robot.data import rebuild_manifest; rebuild_manifest('{root}')\"`"
    if not path.exists():
        raise ManifestError(f"no {MANIFEST} in {root}: not a collected dataset (or it was deleted). {fix}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path} is unreadable ({exc}). {fix}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} is not an {FORMAT} manifest. {fix}")
    if manifest.get("version") != VERSION:
        raise ManifestError(f"{path} has format version {manifest.get('version')}, this code reads {VERSION}")
    return manifest


def save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (readers see the old or the new one, never a mix)."""
    atomic_write_bytes(Path(root) / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def entry_for(path: Path, data: bytes, shard: ShardData) -> dict[str, Any]:
    """The manifest entry of an already written (and decoded) shard."""
    return {
        "file": Path(path).name,
        "episodes": [int(i) for i in shard.episode_ids],
        "frames": len(shard.frames),
        "bytes": len(data),
        "sha256": sha256_bytes(data),
        "meta": shard.meta,
    }


def rebuild_manifest(root: Path, collection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild `manifest.json` from the shards on disk (skipping unreadable ones) and return it.

    The collection settings are kept from the old manifest when it is readable, else `collection`.
    """
    root = Path(root)
    try:
        old = load_manifest(root).get("collection", {})
    except ManifestError:
        old = {}
    manifest = empty_manifest(collection if collection is not None else old)
    seen: set[int] = set()
    for path in sorted(root.glob(SHARD_GLOB)):
        if shard_index(path.name) is None:
            continue
        try:
            data = path.read_bytes()
            shard = decode_shard(path, data)
        except (OSError, ShardError) as exc:
            warnings.warn(f"rebuild_manifest: skipping {path}: {exc}", stacklevel=2)
            continue
        ids = {int(i) for i in shard.episode_ids}
        if ids & seen:
            warnings.warn(f"rebuild_manifest: skipping {path}: it repeats episodes", stacklevel=2)
            continue
        seen |= ids
        manifest["shards"].append(entry_for(path, data, shard))
    save_manifest(root, manifest)
    return manifest
