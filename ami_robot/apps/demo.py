"""`ami-robot demo`: a few zero-shot pick-and-place episodes on the shipped checkpoints, with videos."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from ami_robot.apps.common import (
    build_planner,
    build_world_model,
    check_task,
    output_dir,
    policy_factory,
    to_dict,
)
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog, markdown_table, summarize


def run(cfg: DictConfig) -> None:
    out = output_dir()
    task = check_task(cfg.task)
    world_model, record = build_world_model(cfg.model)
    planner = build_planner(cfg.planner)
    factory = policy_factory(cfg.policy, lambda: world_model, planner)
    seeds = list(range(cfg.seed_start, cfg.seed_start + cfg.episodes))
    log = EpisodeLog(out / "episodes.jsonl", {"demo": to_dict(cfg), "model": record})
    records = run_episodes(task, seeds, factory, log, method=cfg.method, env_kwargs=to_dict(cfg.env),
                           batch_size=cfg.batch_size, video_dir=out / "videos")
    seconds = [s for r in records for s in r.get("plan_seconds", [])]
    print(markdown_table(summarize(records)))
    for r in records:
        print(f"seed {r['seed']}: {'success' if r['success'] else 'failure'}, "
              f"object {100 * r['final_distance']:.1f} cm from its goal")
    if seconds:
        print(f"median planning time: {np.median(seconds):.3f} s per action "
              f"({cfg.batch_size} episodes planned per batch)")
    print(f"videos (camera view | goal) in {out / 'videos'}")
