"""`ami-robot demo`: a few zero-shot pick-and-place episodes by pure latent planning, with videos."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from ami_robot.apps.common import (
    AppError,
    build_planner,
    build_world_model,
    env_kwargs,
    output_dir,
    policy_factory,
    to_dict,
    views_for,
)
from ami_robot.apps.schemas import DemoArgs, app_args
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog, ResumeMismatchError, markdown_table, summarize
from ami_robot.report import write_report
from ami_robot.runlock import RunLockedError


def run(cfg: DictConfig) -> None:
    args = app_args(cfg, DemoArgs, "demo")
    out = output_dir()
    world_model, record = build_world_model(cfg.model)
    env = views_for(env_kwargs(cfg.env), world_model)  # the cameras the model reads, unless env.views says
    planner = build_planner(cfg.planner)
    factory = policy_factory(cfg.policy, lambda: world_model, planner)
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    log = EpisodeLog(out / "episodes.jsonl", {"demo": to_dict(cfg), "model": record})
    try:
        log.open()
    except (ResumeMismatchError, RunLockedError) as exc:
        raise AppError(str(exc)) from None
    records = run_episodes(args.task, seeds, factory, log, method=args.method, env_kwargs=env,
                           batch_size=args.batch_size, video_dir=out / "videos")
    log.close()
    seconds = [s for r in records for s in r.get("plan_seconds", [])]
    print(markdown_table(summarize(records)))
    for r in records:
        print(f"seed {r['seed']}: {'success' if r['success'] else 'failure'}, "
              f"object {100 * r['final_distance']:.1f} cm from its goal")
    if seconds:
        print(f"median planning time: {np.median(seconds):.3f} s per action "
              f"({args.batch_size} episodes planned per batch)")
    print(f"videos (the cameras beside the goal) in {out / 'videos'}; "
          f"open {write_report(out, 'ami-robot demo')} in a browser")
