"""`ami-robot plan goal=PATH.png`: plan towards goal images of your own in one of our envs.

One image of the rearranged scene: where the task has a sub-goal maker beside the world model
(Grasp, Push and PickPlace with the two-view model, plan's default), the agent makes its own
sub-goals and plans through them (ami_robot.policies.subgoals); else it plans flat. Several
images: they are the sub-goals, in order. The video shows the camera, the goal planned toward now
and the final goal."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from omegaconf import DictConfig

from ami_robot.agent import GoalSchedule, observed_frames
from ami_robot.apps.common import (
    AppError,
    build_planner,
    build_world_model,
    env_kwargs,
    output_dir,
    views_for,
)
from ami_robot.apps.schemas import PlanArgs, app_args
from ami_robot.envs import TASK_SPECS, VIEWS, view_key
from ami_robot.episodes import make_env
from ami_robot.policies.latent import LatentMPC
from ami_robot.video import fit, write_subgoal_images, write_video


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


def _describe(image: np.ndarray, size: int, views: int = 1) -> str:
    h, w = image.shape[:2]
    if views > 1:
        return f"{w}x{h} px: {views} cameras of {w}x{w}, each resized to {size}x{size} px, the model's input"
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
    views = VIEWS[: world_model.views]
    for p, g in zip(paths, goals, strict=True):
        _check_views(p, g, views)
        print(f"goal {p}: {_describe(g, world_model.image_size, len(views))}")
    budgets = list(args.budgets) if args.budgets else [4] * (len(goals) - 1)
    if len(budgets) < len(goals) - 1:
        raise AppError(f"{len(goals)} goal images need {len(goals) - 1} step budgets (budgets=[...]), "
                       f"got {len(budgets)}")
    steps = TASK_SPECS[task].budget if args.steps is None else args.steps
    env = make_env(task, **views_for(env_args, world_model))
    policy = LatentMPC(world_model, planner, energy=args.energy, seed=args.seed,
                       subgoal_budgets=args.budgets or (5,), subgoal_frames=args.subgoal_frames)
    obs, info = env.reset(seed=args.seed)
    if len(goals) == 1:  # one image of the rearranged scene: the agent makes its own sub-goals, if it can
        size = goals[0].shape[1]
        user = {view_key(v, "goal_"): goals[0][i * size:(i + 1) * size] for i, v in enumerate(views)}
        policy.reset_batch([obs], [{"task": task, **user}])
    else:
        policy.reset_batch([obs], [info], schedules=[GoalSchedule(goals, budgets=budgets[: len(goals) - 1])])
    made = policy.made_subgoals(0)
    if made:
        chosen = ", ".join(f"{m['moment']} ({m['shown_by'] or 'not shown'})" for m in made)
        print(f"sub-goals made from the goal image, 5 steps each unless budgets=[...]: {chosen}")
        write_subgoal_images(out / "subgoals", made)
    frames, goal_index = [observed_frames(obs, views)], []
    for _ in range(steps):
        goal_index.append(policy.schedules[0].index)
        obs, *_ = env.step(policy.act_batch([obs])[0])
        frames.append(observed_frames(obs, views))
    env.close()
    energies = policy.energies[0]
    _video(out / "plan.mp4", frames, policy.schedules[0].goals, goal_index, len(views))
    _energy_plot(out / "energy.png", energies, goal_index)
    print(f"{steps} steps planned in {np.sum(policy.planning_seconds):.1f} s "
          f"(median {np.median(policy.planning_seconds):.3f} s per action); "
          f"energy {energies[0]:.4f} -> {energies[-1]:.4f}")
    panels = "camera | sub-goal | goal" if made or len(goals) > 1 else "camera | goal"
    shown = f", the sub-goals' frames in {out / 'subgoals'}" if made else ""
    print(f"video ({panels}) {out / 'plan.mp4'}, energy plot {out / 'energy.png'}{shown}")


def _check_views(path: str, image: np.ndarray, views: tuple[str, ...]) -> None:
    """A model of several views reads a goal image of each camera stacked top to bottom."""
    h, w = image.shape[:2]
    if len(views) > 1 and h != len(views) * w:
        raise AppError(f"goal image {path} is {w}x{h} px, but the model reads {len(views)} cameras "
                       f"({', '.join(views)}) stacked top to bottom: give a {w}x{len(views) * w} image of "
                       "them (as the sub-goal PNGs of `eval save_subgoals=true` are), or model=shipped, "
                       "which reads the exterior camera alone")


def _panel(image: np.ndarray, size: int, views: int) -> np.ndarray:
    """An image of `views` stacked squares (or one of any shape) at size x views*size."""
    side = image.shape[0] // views
    return np.concatenate([fit(image[i * side:(i + 1) * side], size) for i in range(views)], axis=0)


def _video(path: Path, frames: list[np.ndarray], goals: list[np.ndarray], goal_index: list[int],
           views: int) -> None:
    """camera | the goal planned toward now | the final goal (the middle one only with sub-goals)."""
    size = frames[0].shape[1]
    shown = [_panel(g, size, views) for g in goals]
    indices = goal_index + goal_index[-1:]
    rows = [[f, shown[i], shown[-1]] if len(goals) > 1 else [f, shown[i]] for f, i in zip(frames, indices,
                                                                                        strict=True)]
    write_video(path, [np.concatenate(row, axis=1) for row in rows])


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
