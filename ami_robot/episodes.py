"""Run episodes under the evaluation protocol: fixed budget, success read from the simulator.

Episodes of one task run in lockstep batches of `batch_size` environments, so a policy that
plans in batches (`act_batch`) plans for all of them at once; others get one instance per
environment. No episode stops early: every one runs its task's full budget, and success is the
simulator's verdict after the last action. Each finished episode goes to the EpisodeLog (one
fsynced JSON line) before the next batch starts, so an interrupted run resumes where it was.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import ami_robot.envs  # noqa: F401  (registers the ami_robot/* ids)
from ami_robot.envs import TASK_SPECS
from ami_robot.evaluation import EpisodeLog
from ami_robot.video import VIDEO_SIZE, episode_video, target_of, video_name, write_subgoal_images

PolicyFactory = Callable[..., Any]


def make_env(task: str, **env_kwargs: Any) -> gym.Env:
    """One environment of a task by its name (Reach, Grasp, Push, PickPlace)."""
    if task not in TASK_SPECS:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASK_SPECS)}")
    return gym.make(TASK_SPECS[task].env_id, **env_kwargs)


def instantiate_policy(factory: PolicyFactory, env: gym.Env) -> Any:
    """Call the factory, giving it `env` if it takes one (privileged policies do)."""
    target = factory.func if hasattr(factory, "func") else factory  # functools.partial from Hydra
    try:
        takes_env = "env" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        takes_env = False
    return factory(env=env.unwrapped) if takes_env else factory()


def run_episodes(
    task: str,
    seeds: Sequence[int],
    policy_factory: PolicyFactory,
    log: EpisodeLog,
    method: str,
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 1,
    video_dir: str | Path | None = None,
    video_size: int = VIDEO_SIZE,
    progress: bool = True,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    subgoal_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run `task` for every seed not yet in `log`; returns all of this task/method's records.

    With `video_dir`, each episode's video (ami_robot.video) goes there, its cameras rendered at
    `video_size` px (or env_kwargs' render_size, if larger) while observations keep image_size.
    A policy that makes its own sub-goals (`made_subgoals(index)`) has them named in the record;
    with `subgoal_dir`, the frames that show them are written there as PNGs too.
    """
    done = {r["seed"]: r for r in log.open() if r["task"] == task and r["method"] == method}
    todo = [s for s in seeds if s not in done]
    budget = TASK_SPECS[task].budget
    env_kwargs = dict(env_kwargs or {})
    if video_dir is not None:  # a second, larger renderer for people; the policy sees the same obs
        sizes = (video_size, env_kwargs.get("render_size") or 0, env_kwargs.get("image_size", 0))
        env_kwargs.update(render_mode="rgb_array", render_size=max(sizes))
    envs = [make_env(task, **env_kwargs) for _ in range(max(1, min(batch_size, len(todo))))]
    # One policy per environment (bound to it, for privileged ones), made once; a batch policy
    # serves every environment from the first instance.
    first = instantiate_policy(policy_factory, envs[0]) if todo else None
    batched = hasattr(first, "act_batch")
    per_env = [first] * len(envs) if batched else [first] + [
        instantiate_policy(policy_factory, env) for env in envs[1:]]
    bar = tqdm(total=len(seeds), initial=len(seeds) - len(todo), desc=f"{task}/{method}",
               disable=not progress)
    try:
        for lo in range(0, len(todo), len(envs)):
            chunk = todo[lo : lo + len(envs)]
            active = envs[: len(chunk)]
            start = time.time()
            obs, infos = [], []
            for env, seed in zip(active, chunk, strict=True):
                o, info = env.reset(seed=int(seed))
                info["seed"] = int(seed)
                obs.append(o)
                infos.append(info)
            policies = per_env[: len(chunk)]
            if batched:
                first.reset_batch(obs, infos, seeds=chunk)
            else:
                for policy, o, info in zip(policies, obs, infos, strict=True):
                    policy.reset(o, info)
            shown = [[env.unwrapped.render_views()] for env in active] if video_dir else None
            targets: list[list[Any]] = [[] for _ in chunk]
            last_infos = infos
            for _ in range(budget):
                if shown is not None:  # what each policy plans toward from this frame
                    for i, policy in enumerate(policies):
                        targets[i].append(target_of(policy, i if batched else 0))
                if batched:
                    actions = first.act_batch(obs)
                else:
                    actions = [p.act(o) for p, o in zip(policies, obs, strict=True)]
                stepped = [env.step(a) for env, a in zip(active, actions, strict=True)]
                obs = [s[0] for s in stepped]
                last_infos = [s[4] for s in stepped]
                if shown is not None:
                    for frames, env in zip(shown, active, strict=True):
                        frames.append(env.unwrapped.render_views())
            wall = time.time() - start
            for i, (seed, info) in enumerate(zip(chunk, last_infos, strict=True)):
                record = _record(task, method, int(seed), info, policies[i], i, batched, wall / len(chunk))
                made = getattr(policies[i], "made_subgoals", None)
                chosen = made(i if batched else 0) if made is not None else []
                if chosen:  # what the agent planned toward, by the training frames nearest each made latent
                    record["subgoals"] = [{k: v for k, v in c.items() if k != "image"} for c in chosen]
                    if subgoal_dir is not None:
                        write_subgoal_images(Path(subgoal_dir) / f"{task}_{method}_seed{seed}", chosen)
                log.append(record)
                done[int(seed)] = record
                if shown is not None:
                    episode_video(Path(video_dir) / video_name(task, method, seed), shown[i], infos[i],
                                  targets[i], record.get("energies", []), f"{task} {method} seed {seed}")
                if on_episode is not None:
                    on_episode(record)
                bar.update(1)
    finally:
        bar.close()
        for env in envs:
            env.close()
    return [done[s] for s in seeds if s in done]


def _record(task: str, method: str, seed: int, info: dict[str, Any], policy: Any, index: int,
            batched: bool, wall_s: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "task": task, "method": method, "seed": seed, "success": bool(info["success"]),
        "final_distance": float(info["distance"]), "steps": TASK_SPECS[task].budget,
        "wall_seconds": round(wall_s, 3),
    }
    seconds = getattr(policy, "planning_seconds", None)
    if seconds:
        record["plan_seconds"] = [round(float(s), 5) for s in seconds]
    energies = getattr(policy, "energies", None)
    if energies:
        mine = energies[index] if batched else energies
        record["energies"] = [round(float(e), 5) for e in mine]
    return record

