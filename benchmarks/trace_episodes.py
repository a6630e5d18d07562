"""What the world-model planner does, step by step, beside what the simulator knows.

    python benchmarks/trace_episodes.py --tasks Grasp --seeds 20000 20001 --checkpoint checkpoints/two_view
    python benchmarks/trace_episodes.py --seeds 20005 --planner icem --gripper-snap --json trace.json

Plays bench_diagnosis.py's world_model row (LatentMPC, every sub-goal for --budget steps, the
planner and action space of the same options) on development seeds, all in one batch, and prints
per step: the sub-goal index, the action taken (xyz in cm, gripper delta), the TCP minus the
object (cm), the gripper's measured state and its command (0 open .. 1 closed), the object's
height (cm), the task's distance to its goal (cm) and the plan's energy. The simulator's state is
read only to print it; the planner never sees it. Where a miss happens (a close that stops short
of the object, the hand sliding off it, a drop) shows here, not in a success count.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from bench_diagnosis import action_space, add_model_args, development_model  # sibling scripts

from ami_robot.envs import TASK_SPECS
from ami_robot.episodes import make_env
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC


def trace(task: str, seeds: list[int], policy: LatentMPC, env_kwargs: dict,
          steps: int | None = None) -> dict[int, list[dict]]:
    """Per seed, one row per step (the task's budget, or its first `steps`): what the planner
    chose and the simulator's state after it."""
    envs = [make_env(task, **env_kwargs) for _ in seeds]
    obs, infos = [], []
    for env, seed in zip(envs, seeds, strict=True):
        o, info = env.reset(seed=seed)
        info["seed"] = seed
        obs.append(o)
        infos.append(info)
    policy.reset_batch(obs, infos, seeds=seeds)
    rows: dict[int, list[dict]] = {seed: [] for seed in seeds}
    for t in range(min(steps or TASK_SPECS[task].budget, TASK_SPECS[task].budget)):
        goal_index = [schedule.index for schedule in policy.schedules]
        actions = policy.act_batch(obs)
        for k, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
            obs[k], _, _, _, info = env.step(actions[k])
            tcp, grip, obj = np.split(env.unwrapped.task_state(), [3, 4])
            rows[seed].append({
                "t": t, "goal": goal_index[k], "action": actions[k][[0, 1, 2, 6]].round(4).tolist(),
                "tcp_minus_object": (tcp - obj).round(4).tolist(), "gripper": round(float(grip[0]), 3),
                "gripper_cmd": round(env.unwrapped.sim.gripper_cmd, 3), "object_z": round(float(obj[2]), 4),
                "energy": round(float(policy.energies[k][-1]), 4), "success": bool(info["success"]),
                "distance": round(float(info["distance"]), 4)})
    for env in envs:
        env.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["Grasp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[20000], help="development seeds: 20,000+")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", type=int, default=5, help="steps per sub-goal (every sub-goal)")
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    add_model_args(parser)
    parser.add_argument("--steps", type=int, default=None, help="trace only the first steps (default: all)")
    parser.add_argument("--json", default=None, help="also write every row here")
    args = parser.parse_args()
    args.seed_start = min(args.seeds)  # development_model refuses evaluation seeds by it
    wm, predicts = development_model(parser, args)
    if not predicts:
        parser.error(f"the planner needs a predictor of {len(args.views)} view(s): give --checkpoint")
    planner = make_config(args.planner, samples=args.samples, iterations=args.iterations, horizon=1,
                          space=action_space(args))
    env_kwargs = {"palette": "heldout", "views": tuple(args.views), "image_size": args.image_size,
                  "subgoals": "all"}
    dump = {}
    for task in args.tasks:
        policy = LatentMPC(wm, planner, goals="subgoals", subgoal_budgets=(args.budget,))
        rows = trace(task, args.seeds, policy, env_kwargs, args.steps)
        dump[task] = rows
        for seed, steps in rows.items():
            print(f"{task} seed {seed}: {'success' if steps[-1]['success'] else 'miss'}, "
                  f"{100 * steps[-1]['distance']:.1f} cm from the goal after {len(steps)} steps")
            print("   t goal  action dx dy dz (cm) grip  tcp-object (cm)       gripper cmd  object z"
                  "  to goal  energy")
            for r in steps:
                dx, dy, dz, dg = r["action"]
                rel = " ".join(f"{100 * v:5.1f}" for v in r["tcp_minus_object"])
                move = f"{100 * dx:5.1f} {100 * dy:5.1f} {100 * dz:5.1f} {dg:5.2f}"
                grip = f"{r['gripper']:5.2f} {r['gripper_cmd']:5.2f}"
                print(f"  {r['t']:2d}  {r['goal']:2d}   {move}   {rel}   {grip}  {100 * r['object_z']:6.1f}"
                      f"  {100 * r['distance']:6.1f}  {r['energy']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dump, f)


if __name__ == "__main__":
    main()
