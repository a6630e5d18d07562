"""`ami-robot plan goal=PATH.png`: plan towards goal images of your own in one of our envs."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from omegaconf import DictConfig

from ami_robot.agent import GoalSchedule
from ami_robot.apps.common import (
    AppError,
    build_planner,
    build_world_model,
    env_kwargs,
    output_dir,
    views_for,
)
from ami_robot.apps.schemas import PlanArgs, app_args
from ami_robot.envs import TASK_SPECS
from ami_robot.episodes import make_env
from ami_robot.policies.latent import LatentMPC
from ami_robot.video import fit, write_video


def load_goal_image(path: str | Path) -> np.ndarray:
    """A goal image as uint8 (H, W, 3); any size (the world model crops and resizes it)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise AppError(f"goal image {path} is a directory, not an image file; pass goal=PATH to a PNG or "
                       f"JPEG file (e.g. goal={path / 'goal.png'})")
    if not path.is_file():
        raise AppError(f"goal image {path} does not exist; pass goal=PATH to a PNG or JPEG file")
    try:
        image = np.asarray(imageio.imread(path))
    except Exception as exc:  # imageio raises many kinds for unreadable files
        raise AppError(f"cannot read goal image {path}: {exc}") from None
    if image.ndim == 3 and image.shape[-1] == 4 and (image[..., 3] == image[..., 3].max()).all():
        image = image[..., :3]  # an opaque alpha channel carries nothing
    if image.ndim != 3 or image.shape[-1] != 3:
        raise AppError(f"goal image {path} has shape {image.shape}; it must be an RGB image (H, W, 3): "
                       "convert it, e.g. with PIL's Image.convert('RGB')")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image // 257).astype(np.uint8)
        else:
            raise AppError(f"goal image {path} has dtype {image.dtype}; save it as 8-bit RGB")
    return image


def _describe(image: np.ndarray, size: int) -> str:
    h, w = image.shape[:2]
    side = min(h, w)
    crop = f"centre-cropped to {side}x{side}, " if h != w else ""
    return f"{w}x{h} px: {crop}resized to {size}x{size} px, the model's input"


def run(cfg: DictConfig) -> None:
    args = app_args(cfg, PlanArgs, "plan")
    env_args = env_kwargs(cfg.env)
    planner = build_planner(cfg.planner)
    out = output_dir()
    task = args.task
    paths = args.goals
    goals = [load_goal_image(p) for p in paths]
    world_model, _ = build_world_model(cfg.model)
    for p, g in zip(paths, goals, strict=True):
        print(f"goal {p}: {_describe(g, world_model.image_size)}")
    budgets = list(args.budgets) if args.budgets else [4] * (len(goals) - 1)
    if len(budgets) < len(goals) - 1:
        raise AppError(f"{len(goals)} goal images need {len(goals) - 1} step budgets (budgets=[...]), "
                       f"got {len(budgets)}")
    steps = TASK_SPECS[task].budget if args.steps is None else args.steps
    env = make_env(task, **views_for(env_args, world_model))
    policy = LatentMPC(world_model, planner, energy=args.energy, seed=args.seed)
    obs, info = env.reset(seed=args.seed)
    policy.reset_batch([obs], [info], schedules=[GoalSchedule(goals, budgets=budgets[: len(goals) - 1])])
    frames, goal_index = [obs["pixels"]], []
    for _ in range(steps):
        goal_index.append(policy.schedules[0].index)
        obs, *_ = env.step(policy.act_batch([obs])[0])
        frames.append(obs["pixels"])
    env.close()
    energies = policy.energies[0]
    _video(out / "plan.mp4", frames, goals, goal_index)
    _energy_plot(out / "energy.png", energies, goal_index)
    print(f"{steps} steps planned in {np.sum(policy.planning_seconds):.1f} s "
          f"(median {np.median(policy.planning_seconds):.3f} s per action); "
          f"energy {energies[0]:.4f} -> {energies[-1]:.4f}")
    print(f"video (camera view | goal) {out / 'plan.mp4'}, energy plot {out / 'energy.png'}")


def _video(path: Path, frames: list[np.ndarray], goals: list[np.ndarray], goal_index: list[int]) -> None:
    size = frames[0].shape[0]
    shown = [fit(g, size) for g in goals]
    indices = goal_index + goal_index[-1:]
    side_by_side = [np.concatenate([f, shown[i]], axis=1) for f, i in zip(frames, indices, strict=True)]
    write_video(path, side_by_side)


def _energy_plot(path: Path, energies: list[float], goal_index: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(1, len(energies) + 1), energies, marker=".")
    for k in range(1, len(goal_index)):
        if goal_index[k] != goal_index[k - 1]:
            ax.axvline(k + 0.5, color="grey", linestyle=":")
    ax.set_xlabel("step")
    ax.set_ylabel("planned energy (latent L1 to goal)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
