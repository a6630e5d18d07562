"""ShardWriter: append episodes to a dataset folder as atomic shards, resuming what is already there.

Opening a folder that an earlier (possibly killed) run wrote repairs it before anything is added:

- stray temporary files (a write that was cut off) are deleted;
- listed shards that are missing, truncated or corrupted are set aside as `<name>.bad` and dropped
  from the manifest, so their episodes count as not collected and are collected again;
- complete shards that are not in the manifest (killed between the shard's rename and the
  manifest's) are verified and adopted, so no finished shard is lost and no episode is repeated.

A kill -9 therefore loses at most the episodes buffered for the shard in progress.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from ami_robot.data.shards import (
    MANIFEST,
    SHARD_GLOB,
    TMP_MARK,
    Episode,
    ManifestError,
    ShardError,
    decode_shard,
    empty_manifest,
    entry_for,
    load_manifest,
    save_manifest,
    shard_index,
    shard_name,
    write_shard,
)

LOCK = ".lock"


class ShardWriter:
    """Buffers episodes and writes every `episodes_per_shard` of them as one shard plus the manifest."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        collection: dict[str, Any],
        episodes_per_shard: int,
        compresslevel: int = 1,
    ) -> None:
        if episodes_per_shard < 1:
            raise ValueError(f"episodes_per_shard must be >= 1, got {episodes_per_shard}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.episodes_per_shard = episodes_per_shard
        self.compresslevel = compresslevel
        self._lock_fd = self._acquire_lock()
        self._buffer: list[Episode] = []
        self._remove_temp_files()
        self.manifest = self._open_manifest(collection)
        self._drop_bad_shards()
        self._adopt_orphans()
        save_manifest(self.root, self.manifest)
        self._done = {i for entry in self.manifest["shards"] for i in entry["episodes"]}

    # -- resume and repair ------------------------------------------------------------------------

    def _acquire_lock(self) -> int:
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the OS even on kill -9
        except BlockingIOError:
            os.close(fd)
            msg = f"another process is writing to {self.root} (it holds {self.root / LOCK})"
            raise RuntimeError(msg) from None
        return fd

    def _remove_temp_files(self) -> None:
        for path in sorted(self.root.iterdir()):
            if TMP_MARK in path.name:
                warnings.warn(f"removing {path}: an unfinished write of an interrupted run", stacklevel=3)
                path.unlink()

    def _open_manifest(self, collection: dict[str, Any]) -> dict[str, Any]:
        if not (self.root / MANIFEST).exists():
            return empty_manifest(collection)
        try:
            manifest = load_manifest(self.root)
        except ManifestError as exc:
            raise ManifestError(f"cannot resume the collection in {self.root}: {exc}") from exc
        old = manifest.get("collection") or {}
        diff = sorted(k for k in set(old) | set(collection) if old.get(k) != collection.get(k))
        if old and diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {collection.get(k)!r}" for k in diff)
            raise ValueError(
                f"{self.root} holds a collection with other settings ({detail}); episodes would not "
                f"match their ids. Use another out_dir, or the settings recorded in its {MANIFEST}."
            )
        manifest["collection"] = collection
        return manifest

    def _drop_bad_shards(self) -> None:
        keep, seen = [], set()
        for entry in self.manifest["shards"]:
            path = self.root / entry["file"]
            problem = None
            try:
                shard = decode_shard(path, path.read_bytes(), entry["sha256"])
                if sorted(int(i) for i in shard.episode_ids) != sorted(entry["episodes"]):
                    problem = "its episodes differ from the manifest's"
            except FileNotFoundError:
                problem = "the file is missing"
            except (OSError, ShardError) as exc:
                problem = exc.reason if isinstance(exc, ShardError) else str(exc)
            if problem is None and seen & set(entry["episodes"]):
                problem = "it repeats episodes of an earlier shard"
            if problem is None:
                keep.append(entry)
                seen |= set(entry["episodes"])
                continue
            if path.exists():
                path.rename(path.with_name(path.name + ".bad"))
            warnings.warn(
                f"shard {path} is unusable ({problem}); set aside as {path.name}.bad, its "
                f"{len(entry['episodes'])} episodes will be collected again",
                stacklevel=3,
            )
        self.manifest["shards"] = keep

    def _adopt_orphans(self) -> None:
        listed = {entry["file"] for entry in self.manifest["shards"]}
        done = {i for entry in self.manifest["shards"] for i in entry["episodes"]}
        for path in sorted(self.root.glob(SHARD_GLOB)):
            if path.name in listed or shard_index(path.name) is None:
                continue
            try:
                data = path.read_bytes()
                shard = decode_shard(path, data)
            except (OSError, ShardError) as exc:
                path.rename(path.with_name(path.name + ".bad"))
                warnings.warn(f"unlisted shard {path} is unusable ({exc}); set aside as .bad", stacklevel=3)
                continue
            ids = {int(i) for i in shard.episode_ids}
            if ids & done:
                path.rename(path.with_name(path.name + ".bad"))
                warnings.warn(f"unlisted shard {path} repeats episodes; set aside as .bad", stacklevel=3)
                continue
            self.manifest["shards"].append(entry_for(path, data, shard))
            done |= ids

    # -- writing ----------------------------------------------------------------------------------

    @property
    def done_ids(self) -> set[int]:
        """Episode ids already stored in shards (buffered episodes are not included)."""
        return set(self._done)

    def _next_index(self) -> int:
        used = [shard_index(p.name) for p in self.root.iterdir()]
        used += [shard_index(entry["file"]) for entry in self.manifest["shards"]]
        return max((i for i in used if i is not None), default=-1) + 1

    def add(self, episode: Episode) -> None:
        """Buffer one finished episode; a full buffer is written out as a shard."""
        if episode.id in self._done or any(ep.id == episode.id for ep in self._buffer):
            raise ValueError(f"episode {episode.id} is already stored in {self.root}")
        self._buffer.append(episode)
        if len(self._buffer) >= self.episodes_per_shard:
            self.flush()

    def flush(self) -> None:
        """Write the buffered episodes (if any) as one shard, then the manifest."""
        if not self._buffer:
            return
        episodes = sorted(self._buffer, key=lambda ep: ep.id)
        entry = write_shard(self.root / shard_name(self._next_index()), episodes, self.compresslevel)
        self.manifest["shards"].append(entry)
        save_manifest(self.root, self.manifest)
        self._done.update(entry["episodes"])
        self._buffer = []

    def close(self) -> None:
        """Flush and release the folder's lock."""
        if self._lock_fd < 0:
            return
        try:
            self.flush()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()  # buffered episodes are whole: keep them even when leaving on an exception
