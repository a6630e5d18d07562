"""`ami-robot eval` (the protocol, one policy) and `ami-robot bench` (several, side by side)."""

from __future__ import annotations

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
from ami_robot.report import save_figure, success_chart, write_report
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
                                    video_dir=out / "videos" if args.video else None,
                                    subgoal_dir=out / "subgoals" if args.save_subgoals else None)
    log.close()
    summary = summarize(records)
    table = markdown_table(summary)
    write_json(out / "summary.json", {"summary": summary, "config": run_config, "machine": machine_record()})
    (out / "results.md").write_text(f"# {title}\n\n{table}")
    report = write_report(out, title)
    print(table)
    print(f"results in {out}; open {report} in a browser")
    return summary


def run_eval(cfg: DictConfig) -> None:
    """The evaluation protocol (EVAL_PROTOCOL.md) for one policy."""
    args = app_args(cfg, EvalArgs, "eval")
    _run(cfg, args, {args.method: cfg.policy}, title="ami-robot eval")


def run_bench(cfg: DictConfig) -> None:
    """Several policies on the same seeds; a table and a bar chart of success with intervals."""
    args = app_args(cfg, BenchArgs, "bench")
    # methods=null: every policy but one still waiting for its file (sb3 until policies.sb3.path is set)
    ready = [m for m in cfg.policies if cfg.policies[m].get("path", "") is not None]
    chosen = list(args.methods) if args.methods else ready
    unknown = [m for m in chosen if m not in cfg.policies]
    if unknown:
        raise AppError(f"unknown method(s) {unknown}; choose from {list(cfg.policies)}")
    policies = {name: cfg.policies[name] for name in chosen}
    summary = _run(cfg, args, policies, title="ami-robot bench")
    save_figure(success_chart(summary), output_dir() / "bench.png")

