"""Videos for people: frames composed into labelled panels, and the one place videos are written.

The model reads its frames at its own input size (the env's image_size); an episode's video shows
the cameras at the env's render_size (at least VIDEO_SIZE px a view), beside the goal and the
sub-goal the policy plans toward, with the step and the planned energy written on every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ami_robot.envs import VIEWS, view_key

VIDEO_SIZE = 256  # px a view in episode videos, at least
FPS = 4  # one frame per action (the envs act at 4 Hz)
_BAR = 22  # px of the text bars: the caption across the top, each panel's label under it
_INK, _PAPER = (255, 255, 255), (32, 32, 32)


def video_name(task: str, method: str, seed: int) -> str:
    """An episode's video file name, in the run's videos/ folder (the report finds it by this name)."""
    return f"{task}_{method}_seed{seed}.mp4"


def write_subgoal_images(folder: str | Path, made: Sequence[dict[str, Any]]) -> list[Path]:
    """The frames that show an agent's made sub-goals (`made_subgoals`), in order, as
    folder/NN_<moment>.png (views stacked top to bottom, as the model reads them)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{k:02d}_{m['moment']}.png" for k, m in enumerate(made)]
    for path, m in zip(paths, made, strict=True):
        imageio.imwrite(path, m["image"])
    return paths


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and nearest-resize to size x size, uint8 (size, size, 3)."""
    h, w = image.shape[:2]
    side = min(h, w)
    image = image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
    idx = np.arange(size) * side // size
    return np.ascontiguousarray(image[idx][:, idx])


def _bar(text: str, width: int) -> np.ndarray:
    """A dark bar `width` px wide with `text` in it, uint8 (_BAR, width, 3)."""
    bar = Image.new("RGB", (width, _BAR), _PAPER)
    ImageDraw.Draw(bar).text((6, 3), text, fill=_INK, font=ImageFont.load_default(size=14))
    return np.asarray(bar)


def compose(panels: Sequence[tuple[str, np.ndarray]], caption: str, size: int = VIDEO_SIZE) -> np.ndarray:
    """(label, image) panels side by side, each fit to size x size under its label, under `caption`
    across the top (a player's controls cover the bottom): uint8 (2 * _BAR + size, len(panels) * size, 3)."""
    columns = [np.concatenate([_bar(label, size), fit(image, size)], axis=0) for label, image in panels]
    row = np.concatenate(columns, axis=1)
    return np.concatenate([_bar(caption, row.shape[1]), row], axis=0)


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = FPS) -> Path:
    """Frames uint8 (H, W, 3), all one size, as an H.264 MP4 that browsers play (yuv420p)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, list(frames), fps=fps, macro_block_size=2)
    return path


def target_of(policy: Any, index: int) -> tuple[np.ndarray, int, int] | None:
    """What a policy plans toward in episode `index` of its batch, if it keeps a GoalSchedule
    (`schedules`, its own or its agent's): (goal image at the model's size, views stacked; which
    goal; how many). None for policies without goal images (random, expert, retrieval)."""
    schedules = getattr(policy, "schedules", None)
    if schedules is None:
        schedules = getattr(getattr(policy, "agent", None), "schedules", None)
    if not schedules or index >= len(schedules):
        return None
    schedule = schedules[index]
    return schedule.pixels, schedule.index, len(schedule.goals)


def _shown_target(target: np.ndarray, info: dict[str, Any], display: dict[str, Any]) -> np.ndarray:
    """The exterior view of the image the policy plans toward, at display size when it is the env's
    goal or one of its sub-goals (matched against the model-size frames of reset `info`), else the
    model-size image itself (a goal of the user's own, enlarged)."""
    exterior = target[: target.shape[1]]  # views are stacked top to bottom, exterior first
    if np.array_equal(exterior, info[view_key("exterior", "goal_")]):
        return display[view_key("exterior", "goal_")]
    for j, subgoal in enumerate(info.get(view_key("exterior", "subgoal_")) or []):
        if np.array_equal(exterior, subgoal):
            return display[view_key("exterior", "subgoal_")][j]
    return exterior


def episode_video(path: str | Path, shown: Sequence[dict[str, Any]], info: dict[str, Any],
                  targets: Sequence[tuple[np.ndarray, int, int] | None], energies: Sequence[float],
                  title: str) -> Path:
    """An episode's video: one frame per observation (reset, then after each action).

    shown: the env's `render_views()` after reset and after each action; info: the reset info (the
    goal frames at the model's size); targets: `target_of` the policy before each action; energies:
    the energy each step's plan reached (may be empty). Frame k shows every camera, the goal, the
    sub-goal planned toward from that frame (when the policy ever aims at one), and step k with the
    energy of the plan made from it.
    """
    views = [v for v in VIEWS if view_key(v) in shown[0]]
    goal = shown[0][view_key("exterior", "goal_")]
    size = max(goal.shape[1], VIDEO_SIZE)
    final = info[view_key("exterior", "goal_")]
    with_subgoal = any(t is not None and not np.array_equal(t[0][: t[0].shape[1]], final) for t in targets)
    steps = len(shown) - 1
    frames = []
    for k, display in enumerate(shown):
        panels = [(view, display[view_key(view)]) for view in views] + [("goal", goal)]
        aim = targets[min(k, len(targets) - 1)] if targets else None
        if with_subgoal and aim is not None:
            label = f"planning toward goal {aim[1] + 1} of {aim[2]}"
            panels.append((label, _shown_target(aim[0], info, shown[0])))
        energy = f"   planned energy {energies[k]:.4f}" if k < len(energies) else ""
        frames.append(compose(panels, f"{title}   step {k}/{steps}{energy}", size))
    return write_video(path, frames)
