"""report.html: an evaluation a person reads, made from what `eval` and `bench` write.

From a run folder's episodes.jsonl (and summary.json's machine record, when there) one
self-contained page: the results table with Wilson 95% intervals, the success bar chart, the
planning-time histograms, the planned energy along each episode, and one row per episode with a
link to its video (videos/, when the run had video=true), a success and a failure of each task and
method playing inline. Charts are inline PNG (matplotlib). A log that lacks a quantity (an older
log, a policy that does not plan) still makes a report; that section says what is missing.

    python -m ami_robot.report RUN_FOLDER      # (re)writes RUN_FOLDER/report.html
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ami_robot.evaluation import summarize
from ami_robot.video import video_name

REPORT = "report.html"
_RUN_HINT = "pass the folder `ami-robot eval` or `ami-robot bench` wrote (its hydra.run.dir)"
_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #eee; } td.l, th.l { text-align: left; }
tr.fail td:nth-child(4) { color: #b00; } tr.pass td:nth-child(4) { color: #070; }
.note { color: #666; font-style: italic; }
.videos { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } video { max-width: 100%; }
"""


class ReportError(ValueError):
    """A run folder the report cannot read; the message names the file and the fix."""


def read_log(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An episodes.jsonl's header (its `config`; {} if it has none) and episode records, in order.
    A last line cut short (a run killed while writing it; resuming repairs it) is left out."""
    header: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    lines = path.read_text().split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if record is None and number == len(lines):  # no newline after it: a torn last write
            break
        if not isinstance(record, dict):
            raise ReportError(f"{path}:{number} is not a JSON record; fix or remove that line")
        if record.get("header"):
            header = record.get("config") or {}
            continue
        missing = [k for k in ("task", "seed", "success") if k not in record]
        if missing:
            raise ReportError(f"{path}:{number} has no {', '.join(missing)}: not an episode record of "
                              "ami-robot eval; fix or remove that line")
        record.setdefault("method", "agent")
        records.append(record)
    return header, records


def _machine(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("machine") or {}
    except (json.JSONDecodeError, AttributeError):
        raise ReportError(f"{path} is not the JSON object eval writes; delete it (the report does not "
                          "need it) or run eval again") from None


# -- charts ----------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def success_chart(summary: dict[str, dict[str, Any]]) -> Any:
    """Success (%) per task, a bar per method, with Wilson 95% error bars: a matplotlib Figure."""
    plt = _pyplot()
    tasks = sorted({s["task"] for s in summary.values()})
    methods = sorted({s["method"] for s in summary.values()})
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 3.5))
    for j, method in enumerate(methods):
        xs, ys, errs = [], [], [[], []]
        for i, task in enumerate(tasks):
            s = summary.get(f"{task}/{method}")
            if s is None:
                continue
            lo, hi = s["wilson95"]
            xs.append(i + j * width)
            ys.append(100 * s["success_rate"])
            errs[0].append(100 * (s["success_rate"] - lo))
            errs[1].append(100 * (hi - s["success_rate"]))
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=method)
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("success (%) with Wilson 95%")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)


def _grid(n: int, plt: Any, width: float = 3.6, height: float = 2.6) -> tuple[Any, list[Any]]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _plan_time_chart(records: Sequence[dict[str, Any]]) -> Any | None:
    """Seconds per planning step, a panel per method, a histogram per task; None if none recorded."""
    methods = sorted({r["method"] for r in records if r.get("plan_seconds")})
    if not methods:
        return None
    plt = _pyplot()
    fig, axes = _grid(len(methods), plt)
    for ax, method in zip(axes, methods, strict=True):
        for task in sorted({r["task"] for r in records if r["method"] == method}):
            seconds = [s for r in records if r["method"] == method and r["task"] == task
                       for s in r.get("plan_seconds", [])]
            if seconds:
                ax.hist(seconds, bins=30, histtype="step", linewidth=1.5,
                        label=f"{task} (median {np.median(seconds):.3f} s)")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("seconds per planning step")
        ax.set_ylabel("steps")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _energy_chart(records: Sequence[dict[str, Any]]) -> Any | None:
    """The energy each step's plan reached, a line per episode (green: success, red: failure), a
    panel per task and method; None if no record has energies."""
    groups = sorted({(r["task"], r["method"]) for r in records if r.get("energies")})
    if not groups:
        return None
    plt = _pyplot()
    fig, axes = _grid(len(groups), plt)
    for ax, (task, method) in zip(axes, groups, strict=True):
        for r in records:
            if r["task"] == task and r["method"] == method and r.get("energies"):
                ax.plot(r["energies"], color="tab:green" if r["success"] else "tab:red",
                        alpha=0.6, linewidth=1)
        ax.set_title(f"{task} / {method}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("planned energy")
    fig.tight_layout()
    return fig


def _img(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# -- tables ----------------------------------------------------------------------------------------
def _table(head: Sequence[str], rows: Sequence[Sequence[str]], row_class: Sequence[str] = (),
           left: int = 2) -> str:
    """An HTML table; cells are HTML already (escape text first); the first `left` columns align left."""
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f'<{tag}{" class=l" if i < left else ""}>{v}</{tag}>' for i, v in enumerate(values))

    body = "".join(f'<tr class="{row_class[i] if i < len(row_class) else ""}">{cells("td", r)}</tr>'
                   for i, r in enumerate(rows))
    return f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>{body}</tbody></table>"


def _results(summary: dict[str, dict[str, Any]]) -> str:
    rows = []
    for s in summary.values():
        lo, hi = s["wilson95"]
        med, p90 = s["plan_seconds_median"], s["plan_seconds_p90"]
        dist = s["final_distance_median"]
        rows.append([html.escape(s["task"]), html.escape(s["method"]), str(s["episodes"]),
                     f"{s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%)",
                     f"{100 * lo:.0f}&ndash;{100 * hi:.0f}%",
                     "&ndash;" if med is None else f"{med:.3f} / {p90:.3f}",
                     "&ndash;" if dist is None else f"{100 * dist:.1f}"])
    return _table(["task", "method", "episodes", "success", "Wilson 95%", "plan s/step (median / p90)",
                   "final distance median (cm)"], rows)


def _video_path(folder: Path, r: dict[str, Any]) -> str | None:
    rel = f"videos/{video_name(r['task'], r['method'], r['seed'])}"
    return rel if (folder / rel).is_file() else None


def _episodes(records: Sequence[dict[str, Any]], folder: Path) -> str:
    rows, classes = [], []
    for r in sorted(records, key=lambda r: (r["task"], r["method"], r["seed"])):
        energies, seconds = r.get("energies") or [], r.get("plan_seconds") or []
        video = _video_path(folder, r)
        distance = r.get("final_distance")
        rows.append([html.escape(r["task"]), html.escape(r["method"]), str(r["seed"]),
                     "success" if r["success"] else "failure",
                     "&ndash;" if distance is None else f"{100 * distance:.1f}",
                     f"{np.median(seconds):.3f}" if seconds else "&ndash;",
                     f"{energies[0]:.4f} &rarr; {energies[-1]:.4f}" if energies else "&ndash;",
                     f'<a href="{html.escape(video)}">video</a>' if video else "&ndash;"])
        classes.append("pass" if r["success"] else "fail")
    return _table(["task", "method", "seed", "result", "final distance (cm)", "plan s/step (median)",
                   "energy first &rarr; last", "video"], rows, classes)


def _gallery(records: Sequence[dict[str, Any]], folder: Path) -> str:
    """A success and a failure of each task and method, playing inline."""
    chosen: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for r in records:
        key = (r["task"], r["method"], bool(r["success"]))
        if key not in chosen and _video_path(folder, r):
            chosen[key] = r
    items = []
    for (task, method, success), r in sorted(chosen.items()):
        src = html.escape(_video_path(folder, r))
        caption = html.escape(f"{task} / {method}, seed {r['seed']}: {'success' if success else 'failure'}")
        items.append(f'<figure><video controls muted preload="metadata" src="{src}"></video>'
                     f"<figcaption>{caption}</figcaption></figure>")
    return f'<div class="videos">{"".join(items)}</div>'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# -- the page --------------------------------------------------------------------------------------
def build_report(folder: str | Path, title: str = "ami-robot evaluation") -> str:
    """The report's HTML for a run folder (see the module's docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder; {_RUN_HINT}")
    log = folder / "episodes.jsonl"
    if not log.is_file():
        raise ReportError(f"{folder} has no episodes.jsonl; {_RUN_HINT}")
    config, records = read_log(log)
    machine = _machine(folder)
    summary = summarize(records)
    parts = [f"<h1>{html.escape(title)}</h1>", _note(_provenance(folder, config, machine, len(records)))]
    parts.append("<h2>Results</h2>")
    if not records:
        parts.append(_note("No episode has finished yet; resume the run to add them."))
    else:
        parts += [_results(summary), _img(success_chart(summary), "success rate per task and method")]
    parts.append("<h2>Planning time</h2>")
    fig = _plan_time_chart(records)
    parts.append(_img(fig, "planning-time histograms") if fig else _note(
        "No planning times in this log: its policies record none (random and expert do not plan), "
        "or the log was written before eval recorded them."))
    parts.append("<h2>Energy along each episode</h2>")
    fig = _energy_chart(records)
    parts.append(_img(fig, "planned energy along each episode") if fig else _note(
        "No energies in this log: its policies plan on no energy (random, expert), or the log was "
        "written before eval recorded them."))
    parts.append("<h2>Videos</h2>")
    if any(_video_path(folder, r) for r in records):
        parts.append(_gallery(records, folder))
    else:
        parts.append(_note("No videos in videos/: run with video=true to record one per episode."))
    parts += ["<h2>Episodes</h2>", _episodes(records, folder)]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _provenance(folder: Path, config: dict[str, Any], machine: dict[str, Any], episodes: int) -> str:
    model = config.get("model") or {}
    seeds = config.get("seeds")
    bits = [f"{folder.resolve()}", f"{episodes} episodes"]
    if seeds:
        bits.append(f"seeds {seeds[0]}-{seeds[-1]}")
    if model:
        bits.append(f"model {model.get('kind')} {model.get('path') or model.get('encoder') or ''}".strip())
    if machine.get("commit"):
        dirty = " (with uncommitted changes)" if machine.get("uncommitted_changes") else ""
        bits.append(f"commit {machine['commit'][:10]}{dirty}")
    if machine.get("cpu_count"):
        bits.append(f"{machine['cpu_count']} CPUs, {machine.get('cuda') or 'no GPU'}")
    bits.append(f"written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return "; ".join(bits)


def write_report(folder: str | Path, title: str = "ami-robot evaluation") -> Path:
    """Write `folder`/report.html from the run folder's logs; returns its path."""
    page = build_report(folder, title)
    path = Path(folder) / REPORT
    path.write_text(page)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m ami_robot.report RUN_FOLDER  (writes RUN_FOLDER/report.html)",
              file=sys.stderr)
        return 2
    try:
        path = write_report(args[0])
    except ReportError as exc:
        print(f"ami_robot.report: {exc}", file=sys.stderr)
        return 2
    print(f"report in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
