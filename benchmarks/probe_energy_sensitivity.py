"""How much does the latent energy see the object move, against the hand moving as far?

    python benchmarks/probe_energy_sensitivity.py --task Push --seeds 8 --checkpoint checkpoints/two_view

At each development episode's goal state (the env's realised goal, as its goal image shows it) the
object alone, or the hand alone, is moved by each distance along the line from the object's start to
its goal (back toward where it came from: a push that fell short by that much), the views are
rendered, and the energy to the goal image is computed with the checkpoint's frozen encoder, as the
planner's real-frame row (sim_frames) would score that state. Nothing is simulated: the moved body
is put there (the hand by inverse kinematics, the same height and orientation). Per distance: the
median energy over episodes, for the object and for the hand, per view and over all views (the
released energy, every token alike). A success needs the object within 4 cm of its goal; if 4 cm of
the object raise the energy far less than the hand's own errors do, the energy cannot tell a near
miss from a success. `--random-twin` scores with the checkpoint's encoder left at its initialisation
(same architecture, seed 0): what pretraining added to each term.
"""

from __future__ import annotations

import argparse

import mujoco
import numpy as np
import torch
from bench_diagnosis import DTYPES  # sibling script
from bench_expert_energy import load_model

from ami_robot.agent import observed_frames
from ami_robot.envs import view_key
from ami_robot.envs.sim import N_ARM
from ami_robot.episodes import make_env
from ami_robot.models import VisionTransformer
from ami_robot.world_model import WorldModel

DISTANCES = np.array([0.0, 0.01, 0.02, 0.04, 0.06, 0.10])  # m


def moved_energies(env, obs: dict, wm: WorldModel, views: tuple[str, ...], body: str) -> np.ndarray:
    """Energy (len(DISTANCES), views + 1) to the goal image of the episode just reset (obs) with `body`
    ("object" or "hand") moved back along the start-to-goal line by each distance; last column: all
    views. It leaves the env's simulation at the last moved state: reset before stepping it again."""
    base, sim = env.unwrapped, env.unwrapped.sim
    goal_state = base._goal_sim.get_state()  # reset leaves the realised goal state in its scratch sim
    z_goal = wm.encode(observed_frames(obs, views, "goal_")[None])
    back = base.episode.object_xy - base.goal.position[:2]
    back = np.array([*(back / np.linalg.norm(back)), 0.0])
    frames = []
    for distance in DISTANCES:
        sim.set_state(goal_state)
        if body == "object":
            sim.data.qpos[sim.object_qpos : sim.object_qpos + 3] += distance * back
        else:
            pos, quat = sim.tcp_pos() + distance * back, np.empty(4)
            mujoco.mju_mat2Quat(quat, sim.data.site_xmat[sim.tcp_id])
            arm = sim.solve_ik(pos, quat)  # clobbers data: restore, then set the arm
            sim.set_state(goal_state)
            sim.data.qpos[:N_ARM] = arm
        mujoco.mj_forward(sim.model, sim.data)
        shown = {view_key(v): base.render_frame(v) for v in views}
        frames.append(observed_frames(shown, views))
    z = wm.encode(np.stack(frames))
    one_hot = np.eye(len(views))  # a view's own energy: all the weight on it
    columns = [WorldModel.energy(z, z_goal, view_weights=w) for w in one_hot] + [WorldModel.energy(z, z_goal)]
    return torch.stack(columns, 1).numpy()


def random_twin(wm: WorldModel, dtype: torch.dtype) -> WorldModel:
    """`wm` with its encoder replaced by the same architecture at a (seeded) random initialisation."""
    torch.manual_seed(0)
    return WorldModel(VisionTransformer(wm.encoder.config), wm.predictor, dtype=dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="Push", choices=["Push", "PickPlace"])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seed-start", type=int, default=20000, help="development seeds: 20,000+")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    parser.add_argument("--checkpoint", default=None, help="folder with our weights (default: shipped)")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--random-twin", action="store_true", help="the encoder at its initialisation")
    args = parser.parse_args()
    if args.seed_start < 20000:
        parser.error("probe on the development seeds (--seed-start >= 20000)")
    torch.set_num_threads(2)
    views = tuple(args.views)
    wm, _ = load_model(args.checkpoint, len(views), DTYPES[args.dtype])
    if args.random_twin:
        wm = random_twin(wm, DTYPES[args.dtype])
    env = make_env(args.task, palette="heldout", views=views, image_size=64)
    results = {"object": [], "hand": []}
    with torch.no_grad():
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            obs, _ = env.reset(seed=seed)
            for body in results:
                results[body].append(moved_energies(env, obs, wm, views, body))
    env.close()
    columns = [*views, "all views"]
    last = args.seed_start + args.seeds - 1
    encoder = "the random-init twin encoder" if args.random_twin else "the checkpoint's encoder"
    print(f"{args.task}, seeds {args.seed_start}-{last}, {encoder}: energy to the goal image (median over "
          f"seeds) with the object or the hand moved back along the object's start-to-goal line")
    print("| moved | " + " | ".join(f"{100 * d:g} cm" for d in DISTANCES) + " |")
    print("|---|" + "---|" * len(DISTANCES))
    for body, runs in results.items():
        median = np.median(np.stack(runs), axis=0)  # (distances, columns)
        for c, column in enumerate(columns):
            print(f"| {body}, {column} | " + " | ".join(f"{e:.3f}" for e in median[:, c]) + " |")


if __name__ == "__main__":
    main()
