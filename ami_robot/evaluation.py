"""The evaluation protocol's bookkeeping: episode log, resume, Wilson intervals, summary tables.

Every finished episode is one JSON line, flushed and fsynced before the next episode starts, so an
interrupted run resumes from the file without losing or repeating an episode. The log's header
records the configuration it was started with; resuming under a different one is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from ami_robot import runlock


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (scipy's), 95% by default; (0, 1) for n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}")
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def config_fingerprint(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class ResumeMismatchError(RuntimeError):
    pass


@dataclass
class EpisodeLog:
    """``episodes.jsonl``: a header line with the configuration, then one line per episode."""

    path: Path
    config: dict[str, Any]

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.fingerprint = config_fingerprint(self.config)

    def open(self) -> list[dict[str, Any]]:
        """Create the log, or validate and read an existing one; returns the finished episodes.

        The first call takes the run folder's lock (ami_robot.runlock): a second process writing
        the same log is refused, naming the holder. A last line cut short by a kill is repaired:
        a complete record that lost only its newline gets it back, a torn one is cut off (that
        episode is simply run again); nothing before it is touched.
        """
        runlock.acquire(self.path)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"header": True, "fingerprint": self.fingerprint, "config": self.config})
            return []
        lines = self._repaired_lines()
        if not lines:  # only a torn header was there
            return self.open()
        records: list[dict[str, Any]] = []
        header = None
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                raise ValueError(f"{self.path}:{number} is not a JSON record; fix or remove that line")
            if record.get("header"):
                header = record
            else:
                records.append(record)
        if header is None:
            raise ResumeMismatchError(f"{self.path} has no header line; it was not written by ami-robot eval")
        if header["fingerprint"] != self.fingerprint:
            old = header["config"]
            changed = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
            raise ResumeMismatchError(
                f"{self.path} was written with a different configuration (differs in: {', '.join(changed)}); "
                "refusing to mix results. Use a new output directory, or the original configuration."
            )
        return records

    def close(self) -> None:
        """Release the run folder's lock (a clean exit does too)."""
        runlock.release(self.path)

    def _repaired_lines(self) -> list[str]:
        """The log's complete lines, after repairing its last one in place (see `open`)."""
        data = self.path.read_bytes()
        # Lines end in b"\n" only (json.dumps escapes every other line break inside a record).
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends in its newline, else the unterminated last line
        if not tail and lines and not _is_record(lines[-1]):
            # A terminated last line that is not JSON: what a crash leaves when the file's new
            # length reached the disk before its bytes did. Dropped like a torn tail.
            tail = lines.pop() + b"\n" + tail
        if tail:
            if _is_record(tail):
                with open(self.path, "ab") as f:  # complete; only its newline was lost
                    f.write(b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                lines.append(tail)
            else:
                keep = len(data) - len(tail)
                print(f"{self.path}: dropping a torn last record ({len(tail)} bytes, "
                      f"{tail[:60]!r}...); that episode runs again", file=sys.stderr)
                with open(self.path, "r+b") as f:
                    f.truncate(keep)
                    f.flush()
                    os.fsync(f.fileno())
        return [line.decode() for line in lines]

    def append(self, record: dict[str, Any]) -> None:
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        # One write of record and newline together: a kill leaves at most one torn last line.
        blob = (json.dumps(record, default=_jsonable) + "\n").encode()
        with open(self.path, "ab") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per (task, method): episodes, successes, rate, Wilson 95%, planning-time percentiles, distances."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r.get("method", "agent")), []).append(r)
    summary: dict[str, dict[str, Any]] = {}
    for (task, method), rs in sorted(groups.items()):
        n = len(rs)
        k = sum(bool(r["success"]) for r in rs)
        lo, hi = wilson_interval(k, n)
        times = np.array([t for r in rs for t in r.get("plan_seconds", [])], dtype=float)
        dist = np.array([r["final_distance"] for r in rs if r.get("final_distance") is not None], dtype=float)
        summary[f"{task}/{method}"] = {
            "task": task,
            "method": method,
            "episodes": n,
            "successes": k,
            "success_rate": k / n,
            "wilson95": [lo, hi],
            "plan_seconds_median": float(np.median(times)) if times.size else None,
            "plan_seconds_p90": float(np.percentile(times, 90)) if times.size else None,
            "final_distance_median": float(np.median(dist)) if dist.size else None,
            "final_distance_quartiles": (
                [float(np.percentile(dist, q)) for q in (25, 75)] if dist.size else None
            ),
        }
    return summary


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    """The published table: one row per (task, method)."""
    rows = [
        "| task | method | episodes | success | Wilson 95% | plan s/action (median / p90) "
        "| final dist. median (m) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary.values():
        lo, hi = s["wilson95"]
        med, p90 = s["plan_seconds_median"], s["plan_seconds_p90"]
        timing = "-" if med is None else f"{med:.3f} / {p90:.3f}"
        dist = "-" if s["final_distance_median"] is None else f"{s['final_distance_median']:.3f}"
        rows.append(
            f"| {s['task']} | {s['method']} | {s['episodes']} | {s['successes']}/{s['episodes']} "
            f"({100 * s['success_rate']:.0f}%) | {100 * lo:.0f}-{100 * hi:.0f}% | {timing} | {dist} |"
        )
    return "\n".join(rows) + "\n"
