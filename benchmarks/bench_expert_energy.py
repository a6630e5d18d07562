"""Why latent planning solves one task and not another: the energy along the expert's own path.

    python benchmarks/bench_expert_energy.py                       # all tasks, 8 held-out seeds each
    python benchmarks/bench_expert_energy.py --tasks Grasp --seeds 20 --json out.json
    python benchmarks/bench_expert_energy.py --views exterior wrist --subgoals --seed-start 20000

For each held-out episode the scripted expert solves the task while we record, at every step,
the energy (latent L1, as the planner uses it) between the goal image and
- real:        the encoded camera frame: the landscape a perfect model would give the planner;
- one_step:    the predictor's guess of that frame from the previous real frame and action;
- open_loop:   the predictor's guess from the first frame and all actions so far.

Read per task (medians over episodes):
- closest: the step whose real frame is nearest the goal image; the figures below are taken
  there (the expert may go on to correct after the moment the goal image was taken).
- barrier: the largest rise of the real energy on the way there (E_t - min_{s<t} E_s).
  A greedy planner (horizon 1) stops at the minimum before it: the expert must make things look
  worse before they look better (lower the open hand around the object, go behind it to push).
- invisible steps: the share of the expert's gripper moves that change the latent less than
  0.02 (the fingers are 1-2 pixels at 64 px): nothing in the energy asks for them.
- real / one_step / open_loop at the closest step. real near 0: the goal image is reachable in
  the latent; open_loop far above it: the predictor cannot imagine the whole path, so a longer
  horizon would not see the way over the barrier either.

--views exterior wrist reads both cameras (a two-view checkpoint; or, for the real-frame columns
only, the encoder of a one-view checkpoint applied to each view, the predictor columns then left
out). --subgoals also follows sub-goal images in order, every moment the task's expert marks
(`subgoal_events`, the finest the env offers): the path from one sub-goal's moment to the next is
scored against that sub-goal, and "sub-goal barrier" is the largest barrier of any such stretch
(about 0: a greedy planner can follow the sub-goals all the way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import gymnasium as gym
import numpy as np
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.envs import ENV_CLASSES, TASK_SPECS, ScriptedExpert, stack_views
from ami_robot.models import ACPredictor
from ami_robot.world_model import WorldModel

INVISIBLE = 0.02  # latent L1 change below which a step is "not seen"


Frames = list[np.ndarray]


def expert_path(env: gym.Env, seed: int) -> tuple[dict, Frames, Frames, Frames, bool]:
    """Reset with `seed` and let the expert act until its script ends (or the budget runs out)."""
    obs, info = env.reset(seed=seed)
    views = env.unwrapped.views
    expert = ScriptedExpert(env)
    expert.reset()
    frames, states, actions = [stack_views(obs, views)], [obs["state"]], []
    success = False
    for _ in range(TASK_SPECS[env.unwrapped.task_name].budget):
        action = expert.act(obs)
        obs, _, _, _, step_info = env.step(action)
        frames.append(stack_views(obs, views))
        states.append(obs["state"])
        actions.append(np.asarray(action, np.float32))
        success = bool(step_info["success"])
        if expert.done:
            break
    return info, frames, states, actions, success


@torch.no_grad()
def energies(wm: WorldModel, goal: np.ndarray, z: torch.Tensor, states: list[np.ndarray],
             actions: list[np.ndarray], predict: bool = True) -> dict[str, np.ndarray]:
    """Energies along the path whose frames encode to z (T+1, N, D)."""
    z_goal = wm.encode(goal[None])  # (1, N, D)
    change = (z[1:] - z[:-1]).abs().mean(dim=(-2, -1))  # (T,)
    if not predict:
        return {"real": wm.energy(z, z_goal).numpy(), "change": change.numpy()}
    s = torch.as_tensor(np.stack(states))  # (T+1, 7)
    a = torch.as_tensor(np.stack(actions))  # (T, 7)
    one_step = wm.rollout(z[:-1, None], s[:-1, None], a[:, None])[:, 0]  # (T, N, D)
    open_loop = wm.rollout(z[:1, None], s[:1, None], a[None])[0]  # (T, N, D)
    return {"real": wm.energy(z, z_goal).numpy(), "one_step": wm.energy(one_step, z_goal).numpy(),
            "open_loop": wm.energy(open_loop, z_goal).numpy(), "change": change.numpy()}


def barrier(e: np.ndarray) -> float:
    """The largest rise of a sequence above its running minimum."""
    return float(np.max(e - np.minimum.accumulate(e)))


@torch.no_grad()
def subgoal_barrier(wm: WorldModel, info: dict, z: torch.Tensor, views: tuple[str, ...]) -> float:
    """The largest barrier on the way from each sub-goal's moment to the next, against that sub-goal
    (the last stretch, to the end of the path, against the final goal image)."""
    subgoals = stack_views(info, views, "subgoal_") if info.get("subgoal_pixels") else []
    goals = [*subgoals, stack_views(info, views, "goal_")]
    ends = [*info.get("subgoal_steps", []), len(z) - 1]
    z_goals = wm.encode(np.stack(goals))  # (G, N, D)
    worst, start = 0.0, 0
    for z_goal, end in zip(z_goals, ends, strict=True):
        end = min(end, len(z) - 1)
        if end >= start:
            worst = max(worst, barrier(wm.energy(z[start:end + 1], z_goal[None]).numpy()))
        start = max(start, end)
    return worst


def load_model(checkpoint: str | None, views: int,
               dtype: torch.dtype = torch.float32) -> tuple[WorldModel, bool]:
    """The checkpoint's world model (computing in `dtype`), and whether its predictor reads `views`
    views (else: its encoder over `views` views with an untrained predictor, for the real-frame
    columns only)."""
    wm = WorldModel.from_checkpoint(checkpoint or shipped_checkpoint_dir(), dtype=dtype)
    if wm.views == views:
        return wm, True
    predictor = ACPredictor(dataclasses.replace(wm.predictor.config, views=views))
    return WorldModel(wm.encoder, predictor, dtype=dtype), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASK_SPECS))
    parser.add_argument("--seeds", type=int, default=8, help="episodes per task, from seed 10000")
    parser.add_argument("--checkpoint", default=None, help="folder with our weights (default: shipped)")
    parser.add_argument("--json", default=None, help="also write every episode's curves here")
    parser.add_argument("--seed-start", type=int, default=10000)
    parser.add_argument("--views", nargs="+", default=["exterior"], help="camera views, exterior first")
    parser.add_argument("--subgoals", action="store_true", help="also the barrier along every sub-goal")
    args = parser.parse_args()
    torch.set_num_threads(2)
    views = tuple(args.views)
    wm, predict = load_model(args.checkpoint, len(views))
    rows, dump = [], {}
    for task in args.tasks:
        subgoals = ENV_CLASSES[task].subgoal_events if args.subgoals else None
        env = gym.make(TASK_SPECS[task].env_id, image_size=128, palette="heldout", views=views,
                       subgoals=subgoals)
        per = []
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            info, frames, states, actions, success = expert_path(env, seed)
            z = wm.encode(np.stack(frames))  # (T+1, N, D): once, for every energy below
            e = energies(wm, stack_views(info, views, "goal_"), z, states, actions, predict)
            grip_moves = np.abs(np.diff(np.stack(states)[:, 6])) > 0.05
            closest = int(np.argmin(e["real"]))  # >= 1 unless the start is nearest (Reach: never)
            before = max(closest - 1, 0)  # predictions are indexed by the action that led there
            per.append({"seed": seed, "expert_success": success, "steps": len(actions), "closest": closest,
                        "start": float(e["real"][0]), "barrier": barrier(e["real"][: closest + 1]),
                        "real": float(e["real"][closest]),
                        "one_step": float(e["one_step"][before]) if predict else float("nan"),
                        "open_loop": float(e["open_loop"][before]) if predict else float("nan"),
                        "subgoal_barrier": subgoal_barrier(wm, info, z, views) if args.subgoals
                        else float("nan"),
                        "gripper_moves": int(grip_moves.sum()),
                        "invisible_gripper_moves": int((grip_moves & (e["change"] < INVISIBLE)).sum()),
                        "curves": {k: np.round(v, 4).tolist() for k, v in e.items()}})
        env.close()
        dump[task] = per

        def med(key: str, episodes: list[dict] = per) -> float:
            return float(np.median([p[key] for p in episodes]))

        moves = sum(p["gripper_moves"] for p in per)
        unseen = sum(p["invisible_gripper_moves"] for p in per)
        solved = sum(p["expert_success"] for p in per)
        cells = [task, len(per), f"{solved}/{len(per)}", f"{med('steps'):.0f}", f"{med('closest'):.0f}",
                 *(f"{med(k):.3f}" for k in ("start", "barrier", "subgoal_barrier")), f"{unseen}/{moves}",
                 *(f"{med(k):.3f}" for k in ("real", "one_step", "open_loop"))]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    print("| task | episodes | expert success | steps | closest step | start E | barrier | sub-goal barrier "
          "| invisible gripper moves | E real | E one-step | E open-loop |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dump, f)


if __name__ == "__main__":
    main()
