"""Does the world model rank candidate actions the way the real frames do?

    python benchmarks/bench_ranking.py --tasks Grasp --checkpoint checkpoints/two_view
    python benchmarks/bench_ranking.py --tasks Grasp PickPlace Push --seeds 4 --candidates 32
    python benchmarks/bench_ranking.py --path planner --checkpoint checkpoints/two_view

A horizon-1 planner needs no accurate picture of the future, only the right order: the candidate
whose predicted latent is nearest the goal should be the one whose real next frame is. Along the
scripted expert's own path (development seeds, held-out palette, every sub-goal the env offers),
at each step we draw `--candidates` actions from the planner's first sampling distribution (the
V-JEPA 2-AC action space: xyz within +-maxnorm, gripper, rotation pinned) plus the expert's own
action, play each in the simulator from the same snapshot, render and encode the frames they end
in, and score them against the stretch's sub-goal image twice: with the real frames' latents and
with the predictor's one-step guess from the current frame. Per sub-goal stretch (medians over
steps):

- rho:     Spearman rank correlation of predicted and real energies over the candidates (1: the
           model orders them as the world does; 0: no better than chance).
- regret:  the real energy of the model's pick above the real best, as a share of the real
           median's margin above the best (0: the model picks the best; ~1: a median candidate).
- spread:  the real energies' interquartile range: how much the choice matters at this step,
           to set against the model's one-step error (bench_expert_energy.py).
- expert:  the share of candidates the model ranks below the expert's action (1: the expert's
           action looks best to the model; the same figure from the real frames beside it).

--path planner follows the world-model planner's own choices instead (CEM --samples x --iterations,
horizon 1, every sub-goal for --budget steps, as bench_diagnosis.py's world_model row): the states
where it goes wrong are off the expert's path. Row 0 is then the planner's action, and "expert"
reads "the planner's pick beats": from the real frames, how good its choice was.

Simulator and rendering cost: ~(candidates + 1) renders per step of each view.
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
import torch
from bench_diagnosis import action_space, add_model_args, development_model  # sibling scripts
from scipy.stats import spearmanr

import ami_robot.envs  # noqa: F401  (registers the tasks)
from ami_robot.agent import LatentCostModel
from ami_robot.envs import ENV_CLASSES, TASK_SPECS, ScriptedExpert, stack_views
from ami_robot.planners import make_config
from ami_robot.planners.core import ActionSpace
from ami_robot.policies import LatentMPC
from ami_robot.sim_model import SimFramesCostModel


def candidates(first: np.ndarray, n: int, rng: np.random.Generator, space: ActionSpace,
               local: float) -> torch.Tensor:
    """`first` (row 0, the expert's or the planner's action, projected into the space), n draws of
    the planner's first distribution N(0, init_std), then n draws of N(first, local * init_std),
    all projected: (2n + 1, 7) float32. The local draws are what CEM's last iterations compare."""
    std = space.init_std().numpy()
    first = space.project(torch.as_tensor(first, dtype=torch.float32)).numpy()
    drawn = rng.normal(size=(n, 7)) * std
    near = first + local * rng.normal(size=(n, 7)) * std
    return space.project(torch.as_tensor(np.vstack([first[None], drawn, near]), dtype=torch.float32))


@torch.no_grad()
def score_step(real: SimFramesCostModel, model: LatentCostModel, obs: dict, z_goal: torch.Tensor,
               actions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Real and predicted energies (K,) of each candidate action (K, 7) from the env's current state:
    the simulator's rendered frames and the world model's one-step guess, each scored as planning does."""
    return (real.cost_fn(obs, z_goal, 1)(actions[:, None]).numpy(),
            model.cost_fn(obs, z_goal, 1)(actions[:, None]).numpy())


def step_figures(real: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Ranking figures of one step's candidates: row 0 the expert's or planner's action, then n
    broad draws, then n local draws around row 0 (see `candidates`)."""
    n = (len(real) - 1) // 2
    broad, near = slice(0, n + 1), np.r_[0, n + 1:len(real)]
    best, median = real[broad].min(), np.median(real[broad])
    pick = int(np.argmin(predicted[broad]))
    q1, q3 = np.percentile(real[broad], [25, 75])
    return {"rho": float(spearmanr(real[broad], predicted[broad]).statistic),
            "regret": float((real[pick] - best) / max(median - best, 1e-9)),
            "spread": float(q3 - q1),
            "first_model": float(np.mean(predicted[1:n + 1] > predicted[0])),
            "first_real": float(np.mean(real[1:n + 1] > real[0])),
            "rho_local": float(spearmanr(real[near], predicted[near]).statistic),
            "local_gain": float(real[0] - real[near].min()),
            "local_spread": float(np.subtract(*np.percentile(real[near], [75, 25]))),
            "real_first": float(real[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["Grasp"])
    parser.add_argument("--seeds", type=int, default=4, help="episodes per task")
    parser.add_argument("--seed-start", type=int, default=20000, help="development seeds: 20,000+")
    parser.add_argument("--candidates", type=int, default=32, help="broad draws, and as many local ones")
    parser.add_argument("--local", type=float, default=0.25, help="local draws' std, a share of the first")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    parser.add_argument("--image-size", type=int, default=64)
    add_model_args(parser)
    parser.add_argument("--path", default="expert", choices=["expert", "planner"],
                        help="whose path to follow: the scripted expert's or the world-model planner's")
    parser.add_argument("--samples", type=int, default=64, help="--path planner: CEM samples")
    parser.add_argument("--iterations", type=int, default=3, help="--path planner: CEM iterations")
    parser.add_argument("--budget", type=int, default=5, help="--path planner: steps per sub-goal")
    parser.add_argument("--json", default=None, help="also write every step's figures here")
    args = parser.parse_args()
    views = tuple(args.views)
    wm, predicts = development_model(parser, args)
    if not predicts:
        parser.error(f"ranking needs a predictor of {len(views)} view(s): give --checkpoint")
    planner = make_config("cem", samples=args.samples, iterations=args.iterations, horizon=1,
                          space=action_space(args))
    space = planner.space
    latent = LatentCostModel(wm)  # the agent's own cost: what the planner sees
    rows, dump = [], {}
    for task in args.tasks:
        env = gym.make(TASK_SPECS[task].env_id, image_size=args.image_size, palette="heldout", views=views,
                       subgoals="all")
        names = [*ENV_CLASSES[task].subgoal_events, "goal"]
        per: dict[str, list[dict]] = {}
        successes: list[bool] = []
        real_frames = SimFramesCostModel(env.unwrapped, wm)
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            rng = np.random.default_rng(seed)
            obs, info = env.reset(seed=seed)
            goals = [*stack_views(info, views, "subgoal_"), stack_views(info, views, "goal_")]
            labels = names if len(goals) == len(names) else [f"sub-goal {k}" for k in range(len(goals))]
            if args.path == "planner":
                policy = LatentMPC(wm, planner, goals="subgoals", subgoal_budgets=(args.budget,), seed=seed)
                policy.reset(obs, info)
                goals = policy.schedules[0].goals  # the sub-goals the policy keeps, then the final image
                labels = [*labels[: len(goals) - 1], labels[-1]]
            else:
                expert = ScriptedExpert(env)
                expert.reset()
                ends = [*info["subgoal_steps"], TASK_SPECS[task].budget]
            z_goals = wm.encode(np.stack(goals))  # (G, N, D)
            for t in range(TASK_SPECS[task].budget):
                if args.path == "planner":
                    stretch = policy.schedules[0].index
                    action = np.asarray(policy.act(obs), np.float32)
                else:
                    action = np.asarray(expert.act(obs), np.float32)
                    stretch = next(k for k, end in enumerate(ends) if t < end or k == len(ends) - 1)
                real, predicted = score_step(real_frames, latent, obs, z_goals[stretch][None], candidates(
                    action, args.candidates, rng, space, args.local))
                figures = {"seed": seed, "t": t, **step_figures(real, predicted)}
                per.setdefault(labels[stretch], []).append(figures)
                obs, _, terminated, truncated, step_info = env.step(action)
                if (args.path == "expert" and expert.done) or terminated or truncated:
                    break
            successes.append(bool(step_info["success"]))
        env.close()
        dump[task] = per
        for label, steps in per.items():
            med = {k: float(np.median([s[k] for s in steps])) for k in steps[0] if k not in ("seed", "t")}
            rows.append(f"| {task} {sum(successes)}/{len(successes)} | {label} | {len(steps)} | "
                        f"{med['rho']:.2f} | {med['regret']:.2f} | "
                        f"{med['spread']:.3f} | {med['first_model']:.2f} / {med['first_real']:.2f} | "
                        f"{med['rho_local']:.2f} | {med['local_gain']:.3f} | {med['local_spread']:.3f} | "
                        f"{med['real_first']:.3f} |")
    first = "expert" if args.path == "expert" else "planner's pick"
    print(f"checkpoint {args.checkpoint or 'shipped'}; views {views} at {args.image_size} px; "
          f"{args.candidates} candidates + the {first}; seeds from {args.seed_start}, {args.seeds} per task")
    if args.path == "planner":
        print(f"path: the planner's, CEM {args.samples} x {args.iterations}, {args.budget} steps a sub-goal")
    print(f"| task, successes | stretch toward | steps | rho | regret | real spread (IQR) | {first} beats: "
          "model / real | rho local | real gain near it | real spread near it | its real energy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "steps": dump}, f)


if __name__ == "__main__":
    main()
