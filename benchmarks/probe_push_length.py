"""How far should the hand push? The energy of each push length, from real frames and from the model.

    python benchmarks/probe_push_length.py --seed 20009 --at 10 11 --checkpoint checkpoints/two_view \
        --dtype bfloat16 --planner icem --gripper-snap

Plays the world-model planner (bench_diagnosis.py's world_model row: every sub-goal, --budget steps
each) on one development episode of --task. Before the steps given by --at it stops and tries
pushes straight along the object-to-goal line (read from the simulator for the probe only; the
planner never sees it), of 0 to 7.5 cm, each from the same snapshot. Per length: the energy to the
current sub-goal image from the real frames the push ends in, the predictor's guess of it, the
real energy to the final goal image, and how far the object then is from its goal. If the real
energy prefers a push that leaves the object further from its goal, a better predictor will not fix
the miss; the goal images will have to.

--save PATH writes the sub-goal image beside the frames after a 0, 5 and 7.5 cm push at the last
--at step, and the final goal image (each column: exterior over wrist, 4x).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_diagnosis import action_space, add_model_args, development_model  # sibling scripts

from ami_robot.agent import LatentCostModel, observed_frames
from ami_robot.episodes import make_env
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC
from ami_robot.sim_model import SimFramesCostModel

LENGTHS = np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075])  # m


def pushes(direction: np.ndarray) -> np.ndarray:
    """Actions (len(LENGTHS), 7) that move the hand by each length along `direction` (xy), gripper kept."""
    actions = np.zeros((len(LENGTHS), 7), np.float32)
    actions[:, :2] = LENGTHS[:, None] * direction
    return actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="Push", choices=["Push", "PickPlace"])
    parser.add_argument("--seed", type=int, default=20009, help="a development seed: 20,000+")
    parser.add_argument("--at", nargs="+", type=int, default=[10, 11], help="steps to probe before")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    parser.add_argument("--budget", type=int, default=5, help="steps per sub-goal (every sub-goal)")
    parser.add_argument("--planner", default="icem")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--save", default=None, help="a PNG of the images at the last --at step")
    add_model_args(parser)
    args = parser.parse_args()
    args.seed_start = args.seed  # development_model refuses evaluation seeds by it
    wm, predicts = development_model(parser, args)
    if not predicts:
        parser.error(f"the planner needs a predictor of {len(args.views)} view(s): give --checkpoint")
    views = tuple(args.views)
    try:
        planner = make_config(args.planner, samples=args.samples, iterations=args.iterations, horizon=1,
                              space=action_space(args))
    except (TypeError, ValueError) as exc:
        parser.error(f"--planner {args.planner}: {exc}")
    env = make_env(args.task, palette="heldout", views=views, image_size=64, subgoals="all")
    base = env.unwrapped
    policy = LatentMPC(wm, planner, goals="subgoals", subgoal_budgets=(args.budget,))
    obs, info = env.reset(seed=args.seed)
    info["seed"] = args.seed
    policy.reset_batch([obs], [info], seeds=[args.seed])
    real, model = SimFramesCostModel(base, wm), LatentCostModel(wm)
    z_final = real.encode_goal(observed_frames(obs, views, "goal_"))
    goal_xy = np.asarray(base.goal.position[:2])
    for t in range(max(args.at) + 1):
        if t in args.at:
            schedule = policy.schedules[0]
            z_sub = real.encode_goal(schedule.pixels)
            tcp, _, obj = np.split(base.task_state(), [3, 4])
            to_goal = goal_xy - obj[:2]
            actions = pushes(to_goal / np.linalg.norm(to_goal))
            batch = torch.as_tensor(actions)[:, None]
            e_real = real.cost_fn(obs, z_sub, 1)(batch).numpy()
            e_model = model.cost_fn(obs, z_sub, 1)(batch).numpy()
            e_final = real.cost_fn(obs, z_final, 1)(batch).numpy()
            snapshot, after, frames = base.get_sim_state(), [], []
            for action in actions:
                base.set_sim_state(snapshot)
                o, _, _, _, step_info = env.step(action)
                after.append(step_info["distance"])
                frames.append(observed_frames(o, views))
            base.set_sim_state(snapshot)
            rel = np.round(100 * (tcp - obj), 1).tolist()
            print(f"{args.task} seed {args.seed}, before step {t} (sub-goal {schedule.index}): object "
                  f"{100 * np.linalg.norm(to_goal):.1f} cm from its goal, TCP - object {rel} cm")
            print("| push (cm) | real energy to the sub-goal | predicted | real energy to the final image "
                  "| object to goal after (cm) |")
            print("|---|---|---|---|---|")
            for length, a, b, c, d in zip(LENGTHS, e_real, e_model, e_final, after, strict=True):
                print(f"| {100 * length:.1f} | {a:.3f} | {b:.3f} | {c:.3f} | {100 * d:.1f} |")
            if args.save and t == max(args.at):
                import imageio.v3 as iio

                tiles = [np.asarray(schedule.pixels), frames[0], frames[5], frames[-1],
                         observed_frames(obs, views, "goal_")]
                iio.imwrite(args.save, np.kron(np.concatenate(tiles, axis=1), np.ones((4, 4, 1), np.uint8)))
        obs, _, _, _, _ = env.step(policy.act_batch([obs])[0])
    env.close()


if __name__ == "__main__":
    main()
