"""One writer per run folder: an exclusive lock beside the file a run appends to.

`<file>.lock` holds an flock (the kernel drops it when its process dies, however it dies, so a
killed run leaves no live lock behind) and says who holds it (pid, host, since), which is what a
refused second writer is told. Where the file system has no flock (some network mounts), the
holder's pid is checked instead: alive on this host -> refused; gone -> the lock is stale and is
taken over; on another host -> refused, naming the file to delete once that run is known dead.
A process holds each lock once however many times it opens the file (the eval app and the
episode loop both open the log); `release` or a clean exit empties and unlocks it, so a holder
still named in an unlocked file is one that was killed.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

_HELD: dict[Path, int] = {}  # lock path -> file descriptor, for this process


class RunLockedError(RuntimeError):
    """Another live process writes this run folder."""


def _holder_text(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = "?"
    if isinstance(since, (int, float)):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {when})"


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        holder = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def acquire(target: str | Path, what: str = "run folder") -> Path:
    """Lock `target` (the file a run writes) for this process; returns the lock file's path.

    Raises RunLockedError naming the holder when another live process has it.
    """
    target = Path(target).resolve()
    lock = target.with_name(target.name + ".lock")
    if lock in _HELD:
        return lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(_in_use(target, _read_holder(fd), what)) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            _check_without_flock(_read_holder(fd), target, lock, what)  # no flock here: judge by pid
        previous = _read_holder(fd)
        if previous.get("pid") not in (None, os.getpid()):
            # The flock was free, so whoever wrote this is gone (killed or crashed: a clean exit
            # empties the file). Say so: the run is being resumed from what it left.
            print(f"{lock}: taking over the stale lock of {_holder_text(previous)}, which no longer runs",
                  file=sys.stderr)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    if not _HELD:
        atexit.register(_release_all)
    _HELD[lock] = fd
    return lock


def _in_use(target: Path, holder: dict[str, Any], what: str) -> str:
    return (f"{what} {target.parent} is in use: {target.name} is being written by {_holder_text(holder)}; "
            "wait for that run to finish or stop it, or write to another folder (hydra.run.dir=...)")


def _check_without_flock(holder: dict[str, Any], target: Path, lock: Path, what: str) -> None:
    if not holder or holder.get("pid") == os.getpid():
        return
    if holder.get("host") != socket.gethostname():
        raise RunLockedError(
            f"{what} {target.parent} may be in use: {target.name} was locked by {_holder_text(holder)}, "
            f"and this file system cannot tell whether that run still lives; if it does not, delete {lock}")
    if _pid_alive(holder.get("pid")):
        raise RunLockedError(_in_use(target, holder, what))


def release(target: str | Path) -> None:
    """Drop this process's lock on `target` (no-op when it holds none)."""
    target = Path(target).resolve()
    _release(target.with_name(target.name + ".lock"))


def _release_all() -> None:
    for lock in list(_HELD):
        _release(lock)


def _release(lock: Path) -> None:
    fd = _HELD.pop(lock, None)
    if fd is None:
        return
    os.ftruncate(fd, 0)  # an empty lock file is not mistaken for a stale holder
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
