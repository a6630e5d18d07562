"""`ami-robot eval` (the protocol, one policy) and `ami-robot bench` (several, side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ami_robot.apps.common import (
    AppError,
    build_planner,
    build_world_model,
    env_kwargs,
    machine_record,
    output_dir,
    policy_factory,
    to_dict,
    views_for,
    write_json,
)
from ami_robot.apps.schemas import BenchArgs, EpisodesArgs, EvalArgs, app_args
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog, ResumeMismatchError, markdown_table, summarize
from ami_robot.runlock import RunLockedError


def _run(cfg: DictConfig, args: EpisodesArgs, policies: dict[str, Any], title: str) -> dict[str, Any]:
    env = env_kwargs(cfg.env)
    out = output_dir()
    tasks = list(args.tasks)
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    planner = build_planner(cfg.planner)
    built: dict[str, Any] = {}

    def world_model() -> Any:  # built only if some policy takes one
        if "model" not in built:
            built["model"], built["record"] = build_world_model(cfg.model)
        return built["model"]

    factories = {name: policy_factory(p, world_model, planner) for name, p in policies.items()}
    model_record = built.get("record")
    env = views_for(env, built.get("model"))  # the cameras the model reads, unless env.views says
    # The fingerprinted configuration: what must match for a resumed log to be the same run.
    run_config = {"tasks": tasks, "seeds": [seeds[0], seeds[-1]], "env": env,
                  "planner": to_dict(cfg.planner), "policies": {k: to_dict(v) for k, v in policies.items()},
                  "model": model_record}
    log = EpisodeLog(out / "episodes.jsonl", run_config)
    try:
        log.open()
    except (ResumeMismatchError, RunLockedError) as exc:
        raise AppError(str(exc)) from None
    records = []
    for name, factory in factories.items():
        for task in tasks:
            records += run_episodes(task, seeds, factory, log, method=name, env_kwargs=env,
                                    batch_size=args.batch_size,
                                    video_dir=out / "videos" if args.video else None)
    log.close()
    summary = summarize(records)
    table = markdown_table(summary)
    write_json(out / "summary.json", {"summary": summary, "config": run_config, "machine": machine_record()})
    (out / "results.md").write_text(f"# {title}\n\n{table}")
    print(table)
    print(f"results in {out}")
    return summary


def run_eval(cfg: DictConfig) -> None:
    """The evaluation protocol (EVAL_PROTOCOL.md) for one policy."""
    args = app_args(cfg, EvalArgs, "eval")
    _run(cfg, args, {args.method: cfg.policy}, title="ami-robot eval")


def run_bench(cfg: DictConfig) -> None:
    """Several policies on the same seeds; a table and a bar chart of success with intervals."""
    args = app_args(cfg, BenchArgs, "bench")
    chosen = list(args.methods) if args.methods else list(cfg.policies)
    unknown = [m for m in chosen if m not in cfg.policies]
    if unknown:
        raise AppError(f"unknown method(s) {unknown}; choose from {list(cfg.policies)}")
    policies = {name: cfg.policies[name] for name in chosen}
    summary = _run(cfg, args, policies, title="ami-robot bench")
    _bar_chart(summary, output_dir() / "bench.png")


def _bar_chart(summary: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=120)
    plt.close(fig)
