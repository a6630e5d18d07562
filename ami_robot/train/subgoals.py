"""Training a task's sub-goal maker (ami_robot.models.subgoals) on a world model's frozen latents.

Data: the task reset on training seeds 0..N-1 (training palette) with every sub-goal image its
expert marks (`subgoals="all"`); the world model's encoder turns the first frame, the final goal
image and each sub-goal image into latents. A moment the expert reached at its last step is the
final image itself: it is masked. Targets are latents of the env's own images, nothing else.
Training: L1 to each moment's latent, the last `held_out` seeds held out, a checkpoint every 250
steps (resumable). The file written is what LatentMPC finds beside the world model.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.envs import VIEWS
from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker
from ami_robot.policies.subgoals import training_resets
from ami_robot.weights import save_subgoal_maker


@dataclass(frozen=True)
class SubgoalTrainConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    held_out: int = 200  # the last training seeds, for the held-out L1
    bf16: bool = True  # bf16 autocast: ~2x faster where the CPU has bf16 matmuls (far slower where not)
    seed: int = 0


@torch.no_grad()
def collect_subgoal_latents(world_model: Any, task: str, seeds: int, path: str | Path,
                            image_size: int | None = None) -> dict[str, Any]:
    """Encode the first frame, goal and sub-goal images of `seeds` training resets into `path`."""
    views = VIEWS[: world_model.views]
    resets = training_resets(task, seeds, views, image_size or world_model.image_size)
    parts: dict[str, list] = {"z_start": [], "z_goal": [], "z_sub": [], "mask": []}
    frames, mask, started = [], [], time.time()
    for seed, (events, first, subgoals, goal, info) in enumerate(resets):
        frames.append(np.concatenate([first[None], goal[None], subgoals]))
        mask.append([step < info["expert_steps"] for step in info["subgoal_steps"]])
        if len(frames) == 50 or seed == seeds - 1:
            z = world_model.encode(np.concatenate(frames)).half()
            z = z.view(len(frames), len(events) + 2, *z.shape[1:])  # (B, 2 + K, N, D)
            parts["z_start"].append(z[:, 0])
            parts["z_goal"].append(z[:, 1])
            parts["z_sub"].append(z[:, 2:])
            parts["mask"].append(torch.tensor(mask))
            frames, mask = [], []
            print(f"{seed + 1}/{seeds} resets encoded, {time.time() - started:.0f} s", flush=True)
    data = {k: torch.cat(v) for k, v in parts.items()}
    data.update(task=task, events=list(events), views=world_model.views, grid=world_model.encoder.config.grid)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, f"{path}.tmp")
    os.replace(f"{path}.tmp", path)
    return data


def moment_pairs(mask: torch.Tensor, episodes: torch.Tensor) -> torch.Tensor:
    """(episode, moment) rows of the moments each episode has (mask (E, K))."""
    p = torch.cartesian_prod(episodes, torch.arange(mask.shape[1]))
    return p[mask[p[:, 0], p[:, 1]]]


@torch.no_grad()
def held_out_l1(maker: SubgoalMaker, data: dict[str, Any], held_out: int) -> dict[str, list[float]]:
    """Mean L1 per moment on the held-out seeds: the maker's, copying the first frame, copying the goal."""
    zs, zg, zk, mask = data["z_start"], data["z_goal"], data["z_sub"], data["mask"]
    rows = moment_pairs(mask, torch.arange(zs.shape[0])[-held_out:])
    sums, counts = torch.zeros(3, zk.shape[1]), torch.zeros(zk.shape[1])
    for i in range(0, len(rows), 256):
        e, k = rows[i:i + 256, 0], rows[i:i + 256, 1]
        s, goal, y = zs[e].float(), zg[e].float(), zk[e, k].float()
        for j, guess in enumerate((maker(s, goal, k), s, goal)):
            sums[j].index_add_(0, k, (guess - y).abs().mean(dim=(1, 2)))
        counts.index_add_(0, k, torch.ones(len(k)))
    per = (sums / counts.clamp_min(1)).tolist()
    names = ("maker", "copy_first", "copy_goal")
    return {name: [round(x, 4) for x in per[j]] for j, name in enumerate(names)}


def train_subgoal_maker(d: dict[str, Any], checkpoint: str | Path, config: SubgoalTrainConfig,
                        maker_config: dict[str, int] | None = None) -> tuple[SubgoalMaker, dict[str, Any]]:
    """Fit the maker on `collect_subgoal_latents`' data (resuming from `checkpoint` if there);
    returns it and the checkpoint's dict."""
    n = len(d["z_start"])
    if not 0 < config.held_out < n:
        raise ValueError(f"held_out={config.held_out}: give 1 to {n - 1} (the {n} resets of the data)")
    zs, zg, zk, mask = d["z_start"], d["z_goal"], d["z_sub"], d["mask"]
    shape = {"input_dim": zs.shape[2], "grid": d["grid"], "views": d["views"], "moments": zk.shape[1]}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        maker = SubgoalMaker(SubgoalConfig(**shape, **(maker_config or {})))
    train_pairs = moment_pairs(mask, torch.arange(n)[:-config.held_out])
    opt = torch.optim.AdamW(maker.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    g = torch.Generator().manual_seed(config.seed)
    state = {"step": 0}
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        maker.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        g.set_state(state["rng"])
        print(f"resumed at step {state['step']}")
    started = time.time()
    for step in range(state["step"], config.steps):
        warmup = min(1.0, (step + 1) / 200)
        for group in opt.param_groups:
            group["lr"] = config.lr * warmup * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        rows = train_pairs[torch.randint(len(train_pairs), (config.batch_size,), generator=g)]
        e, k = rows[:, 0], rows[:, 1]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            guess = maker(zs[e].float(), zg[e].float(), k)
        loss = (guess.float() - zk[e, k].float()).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(maker.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % 250 == 0 or step + 1 == config.steps:
            state = {"model": maker.state_dict(), "optimizer": opt.state_dict(), "rng": g.get_state(),
                     "step": step + 1, "config": asdict(maker.config), "events": d["events"],
                     "train": asdict(config)}
            torch.save(state, f"{checkpoint}.tmp")
            os.replace(f"{checkpoint}.tmp", checkpoint)
    return maker.eval(), {**state, "data": d}


def export_subgoal_maker(maker: SubgoalMaker, state: dict[str, Any], path: str | Path,
                         world_model_sha256: str | None, made_by: str) -> dict[str, Any]:
    """The maker file LatentMPC reads, with its card (moments, data, the held-out L1 figures)."""
    d, held_out = state["data"], state["train"]["held_out"]
    card = {"task": d["task"], "moments": state["events"], "step": state["step"],
            "world_model_sha256": world_model_sha256,
            "data": {"training_seeds": [0, int(d["z_start"].shape[0]) - 1], "palette": "train",
                     "held_out_seeds": held_out},
            "held_out_l1": held_out_l1(maker, d, held_out), "training": state["train"], "made_by": made_by}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_subgoal_maker(maker, path, card)
