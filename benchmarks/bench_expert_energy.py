"""Why latent planning solves one task and not another: the energy along the expert's own path.

    python benchmarks/bench_expert_energy.py                       # all tasks, 8 held-out seeds each
    python benchmarks/bench_expert_energy.py --tasks Grasp --seeds 20 --json out.json

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
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
import torch

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.envs import TASK_SPECS, ScriptedExpert
from ami_robot.world_model import WorldModel

INVISIBLE = 0.02  # latent L1 change below which a step is "not seen"


Frames = list[np.ndarray]


def expert_path(env: gym.Env, seed: int) -> tuple[dict, Frames, Frames, Frames, bool]:
    """Reset with `seed` and let the expert act until its script ends (or the budget runs out)."""
    obs, info = env.reset(seed=seed)
    expert = ScriptedExpert(env)
    expert.reset()
    frames, states, actions = [obs["pixels"]], [obs["state"]], []
    success = False
    for _ in range(TASK_SPECS[env.unwrapped.task_name].budget):
        action = expert.act(obs)
        obs, _, _, _, step_info = env.step(action)
        frames.append(obs["pixels"])
        states.append(obs["state"])
        actions.append(np.asarray(action, np.float32))
        success = bool(step_info["success"])
        if expert.done:
            break
    return info, frames, states, actions, success


@torch.no_grad()
def energies(wm: WorldModel, goal: np.ndarray, frames: list[np.ndarray], states: list[np.ndarray],
             actions: list[np.ndarray]) -> dict[str, np.ndarray]:
    z_goal = wm.encode(goal[None])  # (1, N, D)
    z = wm.encode(np.stack(frames))  # (T+1, N, D)
    s = torch.as_tensor(np.stack(states))  # (T+1, 7)
    a = torch.as_tensor(np.stack(actions))  # (T, 7)
    one_step = wm.rollout(z[:-1, None], s[:-1, None], a[:, None])[:, 0]  # (T, N, D)
    open_loop = wm.rollout(z[:1, None], s[:1, None], a[None])[0]  # (T, N, D)
    change = (z[1:] - z[:-1]).abs().mean(dim=(-2, -1))  # (T,)
    return {"real": wm.energy(z, z_goal).numpy(), "one_step": wm.energy(one_step, z_goal).numpy(),
            "open_loop": wm.energy(open_loop, z_goal).numpy(), "change": change.numpy()}


def barrier(e: np.ndarray) -> float:
    """The largest rise of a sequence above its running minimum."""
    return float(np.max(e - np.minimum.accumulate(e)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASK_SPECS))
    parser.add_argument("--seeds", type=int, default=8, help="episodes per task, from seed 10000")
    parser.add_argument("--checkpoint", default=None, help="folder with our weights (default: shipped)")
    parser.add_argument("--json", default=None, help="also write every episode's curves here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    wm = WorldModel.from_checkpoint(args.checkpoint or shipped_checkpoint_dir())
    rows, dump = [], {}
    for task in args.tasks:
        env = gym.make(TASK_SPECS[task].env_id, image_size=128, palette="heldout")
        per = []
        for seed in range(10000, 10000 + args.seeds):
            info, frames, states, actions, success = expert_path(env, seed)
            e = energies(wm, info["goal_pixels"], frames, states, actions)
            grip_moves = np.abs(np.diff(np.stack(states)[:, 6])) > 0.05
            closest = int(np.argmin(e["real"]))  # >= 1 unless the start is nearest (Reach: never)
            before = max(closest - 1, 0)  # predictions are indexed by the action that led there
            per.append({"seed": seed, "expert_success": success, "steps": len(actions), "closest": closest,
                        "start": float(e["real"][0]), "barrier": barrier(e["real"][: closest + 1]),
                        "real": float(e["real"][closest]), "one_step": float(e["one_step"][before]),
                        "open_loop": float(e["open_loop"][before]),
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
                 *(f"{med(k):.3f}" for k in ("start", "barrier")), f"{unseen}/{moves}",
                 *(f"{med(k):.3f}" for k in ("real", "one_step", "open_loop"))]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    print("| task | episodes | expert success | steps | closest step | start E | barrier | invisible gripper "
          "moves | E real | E one-step | E open-loop |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dump, f)


if __name__ == "__main__":
    main()
