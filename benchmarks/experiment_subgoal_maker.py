"""Experiment: the agent makes its own sub-goals from the final goal image (ami_robot.models.subgoals).

    python benchmarks/experiment_subgoal_maker.py data --task PickPlace --seeds 4000 --out runs/subgoals
    python benchmarks/experiment_subgoal_maker.py train --task PickPlace --steps 2000 --out runs/subgoals
    python benchmarks/experiment_subgoal_maker.py export --task PickPlace --out runs/subgoals --makers FOLDER
    python benchmarks/experiment_subgoal_maker.py eval --task PickPlace --episodes 16 --out runs/subgoals

data: resets the task on training seeds 0..N-1 (training palette) and encodes, with the two-view
world model's encoder, the first frame, the final goal image and every sub-goal image the env's
expert marks (a moment the expert reached at its last step is the final image; it is masked).
train: fits the sub-goal maker (L1 to each moment's latent, the last 200 seeds held out; bf16
autocast; resumable: a checkpoint every 250 steps). It prints the held-out L1 per moment beside
"copy the first frame" and "copy the goal".
export: writes the trained maker as <--makers>/subgoals_<task>.safetensors (default beside the
two-view model, where `policy.goals=final` finds it) and its JSON card (config, moments, training
step, the world model's sha256 and the held-out L1 figures).
eval (the makers in --makers): development seeds (20,000+), held-out palette; the env gives the final
goal image alone (subgoals=None). LatentMPC with goals="final", as `ami-robot eval policy.goals=final`:
at reset the maker turns the first frame and the goal image into one latent per moment but the
last; the pure latent planner (eval's default: iCEM 64 x 3, whole gripper moves, --budget steps
each) plans toward them in order, then toward the final image.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from bench_diagnosis import action_space, add_model_args, development_model  # sibling scripts

from ami_robot.agent import observed_frames
from ami_robot.episodes import make_env, run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC
from ami_robot.policies.subgoals import MAKER_FILE
from ami_robot.weights import load_subgoal_maker, save_subgoal_maker, sha256_file

VIEWS = ("exterior", "wrist")


def make_data(wm, task: str, seeds: int, path: Path) -> None:
    env = make_env(task, palette="train", views=VIEWS, image_size=64, subgoals="all")
    moments = len(env.unwrapped.subgoal_events)
    parts: dict[str, list] = {"z_start": [], "z_goal": [], "z_sub": [], "mask": []}
    frames, mask, started = [], [], time.time()
    for seed in range(seeds):
        obs, info = env.reset(seed=seed)
        first, goal = observed_frames(obs, VIEWS), observed_frames(info, VIEWS, "goal_")
        frames.append(np.concatenate([first[None], goal[None], observed_frames(info, VIEWS, "subgoal_")]))
        mask.append([step < info["expert_steps"] for step in info["subgoal_steps"]])
        if len(frames) == 50 or seed == seeds - 1:
            with torch.no_grad():
                z = wm.encode(np.concatenate(frames)).half()
            z = z.view(len(frames), moments + 2, *z.shape[1:])  # (B, 2 + K, N, D)
            parts["z_start"].append(z[:, 0])
            parts["z_goal"].append(z[:, 1])
            parts["z_sub"].append(z[:, 2:])
            parts["mask"].append(torch.tensor(mask))
            frames, mask = [], []
            print(f"{seed + 1}/{seeds} resets encoded, {time.time() - started:.0f} s", flush=True)
    data = {k: torch.cat(v) for k, v in parts.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**data, "task": task, "events": list(env.unwrapped.subgoal_events)}, path)


def pairs(mask: torch.Tensor, episodes: torch.Tensor) -> torch.Tensor:
    """(episode, moment) rows of the moments each episode has (mask (E, K))."""
    p = torch.cartesian_prod(episodes, torch.arange(mask.shape[1]))
    return p[mask[p[:, 0], p[:, 1]]]


@torch.no_grad()
def held_out_l1(maker: SubgoalMaker, d: dict, held_out: int) -> dict[str, list[float]]:
    """Mean L1 per moment on the held-out training seeds: the maker's, copying the first frame, the goal."""
    zs, zg, zk, mask = d["z_start"], d["z_goal"], d["z_sub"], d["mask"]
    rows = pairs(mask, torch.arange(zs.shape[0])[-held_out:])
    moments = zk.shape[1]
    sums, counts = torch.zeros(3, moments), torch.zeros(moments)
    for i in range(0, len(rows), 256):
        e, k = rows[i:i + 256, 0], rows[i:i + 256, 1]
        s, goal, y = zs[e].float(), zg[e].float(), zk[e, k].float()
        for j, guess in enumerate((maker(s, goal, k), s, goal)):
            sums[j].index_add_(0, k, (guess - y).abs().mean(dim=(1, 2)))
        counts.index_add_(0, k, torch.ones(len(k)))
    per = (sums / counts.clamp_min(1)).tolist()
    names = ("maker", "copy_first", "copy_goal")
    return {name: [round(x, 4) for x in per[j]] for j, name in enumerate(names)}


def train(data_path: Path, path: Path, steps: int, held_out: int, batch: int = 64, lr: float = 1e-3) -> None:
    d = torch.load(data_path, weights_only=False)
    if not 0 < held_out < len(d["z_start"]):
        n = len(d["z_start"])
        raise SystemExit(f"--held-out {held_out}: give 1 to {n - 1} (the resets of {data_path})")
    zs, zg, zk, mask = d["z_start"], d["z_goal"], d["z_sub"], d["mask"]
    moments = zk.shape[1]
    config = SubgoalConfig(moments=moments)
    maker = SubgoalMaker(config)
    train_pairs = pairs(mask, torch.arange(zs.shape[0])[:-held_out])
    opt = torch.optim.AdamW(maker.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    start = 0
    if path.exists():
        saved = torch.load(path, weights_only=False)
        maker.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        g.set_state(saved["rng"])
        start = saved["step"]
        print(f"resumed at step {start}")

    def rows(p: torch.Tensor) -> tuple[torch.Tensor, ...]:
        e, k = p[:, 0], p[:, 1]
        return zs[e].float(), zg[e].float(), k, zk[e, k].float()

    def validate() -> str:
        maker.eval()
        figures = held_out_l1(maker, d, held_out)
        maker.train()
        return "held-out L1 per moment: " + "; ".join(f"{k} {v}" for k, v in figures.items())

    started = time.time()
    for step in range(start, steps):
        rate = lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in opt.param_groups:
            group["lr"] = rate
        s, goal, k, y = rows(train_pairs[torch.randint(len(train_pairs), (batch,), generator=g)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            guess = maker(s, goal, k)
        loss = (guess.float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(maker.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % 250 == 0 or step + 1 == steps:
            if (step + 1) % 1000 == 0 or step + 1 == steps:
                print(validate(), flush=True)
            torch.save({"model": maker.state_dict(), "optimizer": opt.state_dict(), "rng": g.get_state(),
                        "step": step + 1, "config": vars(config), "events": d["events"],
                        "held_out": held_out}, f"{path}.tmp")
            os.replace(f"{path}.tmp", path)


def export(data_path: Path, trained: Path, path: Path, world_model: Path) -> None:
    saved = torch.load(trained, weights_only=False)
    maker = SubgoalMaker(SubgoalConfig(**saved["config"]))
    maker.load_state_dict(saved["model"])
    maker.eval()
    d = torch.load(data_path, weights_only=False)
    card = {"task": d["task"], "moments": saved["events"], "step": saved["step"],
            "world_model_sha256": sha256_file(world_model),
            "data": {"training_seeds": [0, int(d["z_start"].shape[0]) - 1], "palette": "train",
                     "held_out_seeds": saved["held_out"]},
            "held_out_l1": held_out_l1(maker, d, saved["held_out"]),
            "made_by": "python benchmarks/experiment_subgoal_maker.py data|train|export"}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_subgoal_maker(maker, path, card)
    print(f"{path}: {card['held_out_l1']}")


def evaluate(wm, args: argparse.Namespace, makers: Path, out: Path) -> None:
    _, card = load_subgoal_maker(makers / MAKER_FILE.format(task=args.task))
    planner = make_config(args.planner, samples=args.samples, iterations=args.iterations, horizon=1,
                          space=action_space(args))
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    env_kwargs = {"palette": "heldout", "views": VIEWS, "image_size": 64, "subgoals": None}
    config = {"task": args.task, "maker": card["sha256"], "budget": args.budget, "planner": str(planner),
              "dtype": args.dtype}
    log = EpisodeLog(out / "episodes.jsonl", config)
    policy = LatentMPC(wm, planner, goals="final", subgoal_budgets=(args.budget,), subgoal_maker=makers,
                       subgoal_frames=0)
    records = run_episodes(args.task, seeds, lambda: policy, log, "made_subgoals", env_kwargs=env_kwargs,
                           batch_size=args.batch_size)
    wins = sum(r["success"] for r in records)
    misses = [(r["seed"], round(100 * r["final_distance"], 1)) for r in records if not r["success"]]
    seconds = np.median([s for r in records for s in r.get("plan_seconds", [0.0])])
    made = [m["moment"] for m in records[0].get("subgoals", [])] if records else []
    print(f"{args.task} from the final image, made sub-goals {made}: "
          f"{wins}/{len(records)}, median {seconds:.2f} s/action; misses (seed, cm): {misses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["data", "train", "export", "eval"])
    parser.add_argument("--task", default="PickPlace", choices=["Grasp", "Push", "PickPlace"])
    parser.add_argument("--out", default="runs/subgoals")
    parser.add_argument("--seeds", type=int, default=4000, help="data: training seeds 0..N-1")
    parser.add_argument("--steps", type=int, default=2000, help="train: optimiser steps")
    parser.add_argument("--held-out", type=int, default=200, help="train: the last N training seeds validate")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--seed-start", type=int, default=20000, help="eval: development seeds, 20,000+")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--budget", type=int, default=5, help="eval: steps per made sub-goal")
    parser.add_argument("--planner", default="icem")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--makers", default="checkpoints/two_view",
                        help="export, eval: the folder of subgoals_<task>.safetensors (default: the model's)")
    add_model_args(parser)
    args = parser.parse_args()
    if args.checkpoint is None:
        args.checkpoint = "checkpoints/two_view"
    args.views = VIEWS
    wm, _ = development_model(parser, args)
    out = Path(args.out)
    data, trained = out / f"{args.task}_data.pt", out / f"{args.task}_maker.pt"
    makers = Path(args.makers)
    if args.stage == "data":
        make_data(wm, args.task, args.seeds, data)
    elif args.stage == "train":
        train(data, trained, args.steps, args.held_out)
    elif args.stage == "export":
        weights = Path(args.checkpoint) / "model.safetensors"
        export(data, trained, makers / MAKER_FILE.format(task=args.task), weights)
    else:
        evaluate(wm, args, makers, out / f"{args.task}_eval")


if __name__ == "__main__":
    main()
