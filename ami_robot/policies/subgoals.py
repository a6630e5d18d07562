"""Sub-goals the agent makes from one final goal image, and the real frames that show them.

`SubgoalMakers` finds a task's trained sub-goal maker (ami_robot.models.subgoals) beside the world
model whose latents it was trained on (`subgoals_<Task>.safetensors` with its card) and turns the
first frame and the final goal image into one latent per moment the task's expert marks, but its
last (that moment is the final image itself). Only latents go in and out: no simulator state.

`TrainingFrames` shows a made latent to people as the nearest real frame (mean L1 over the tokens)
among the env's own frames of training resets (seeds 0..n-1, training palette: the first frame,
every sub-goal image and the goal image). It never feeds the planner.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ami_robot.agent import observed_frames
from ami_robot.envs import TASK_SPECS
from ami_robot.models.subgoals import SubgoalMaker
from ami_robot.weights import load_subgoal_maker, sha256_file

MAKER_FILE = "subgoals_{task}.safetensors"


def world_model_sha256(world_model: Any) -> str | None:
    """The sha256 of the weights file a world model was loaded from (the hub layout), or None."""
    weights = Path(getattr(world_model, "checkpoint_dir", None) or "") / "model.safetensors"
    return sha256_file(weights) if weights.is_file() else None


class SubgoalMakers:
    """The sub-goal makers in `folder`, one per task, loaded on first use and checked against the
    world model (token grid, width, views; and the weights it was trained on, when its card says)."""

    def __init__(self, world_model: Any, folder: str | Path | None) -> None:
        self.world_model, self.folder = world_model, Path(folder) if folder is not None else None
        self._loaded: dict[str, tuple[SubgoalMaker, dict] | None] = {}

    def path(self, task: str) -> Path | None:
        return None if self.folder is None else self.folder / MAKER_FILE.format(task=task)

    def get(self, task: str | None) -> tuple[SubgoalMaker, dict] | None:
        """(maker, card) of `task`, or None where the folder holds none (that task plans flat)."""
        if task is None:
            return None
        if task not in self._loaded:
            path = self.path(task)
            self._loaded[task] = self._load(path) if path is not None and path.exists() else None
        return self._loaded[task]

    def _load(self, path: Path) -> tuple[SubgoalMaker, dict]:
        maker, card = load_subgoal_maker(path)
        wm, c = self.world_model, maker.config
        encoder = wm.encoder.config
        makes, writes = (c.views, c.grid, c.input_dim), (wm.views, encoder.grid, encoder.dim)
        if makes != writes:
            raise ValueError(f"{path} makes latents of {makes[0]} view(s) of {makes[1]}^2 tokens of width "
                             f"{makes[2]}; the world model writes {writes[0]} of {writes[1]}^2 of width "
                             f"{writes[2]}: use the world model it was trained with, or "
                             "subgoal_maker=null to plan flat")
        trained_on, this_one = card.get("world_model_sha256"), world_model_sha256(wm)
        if trained_on and this_one and this_one != trained_on:
            raise ValueError(f"{path} was trained on the latents of another world model (model.safetensors "
                             f"{trained_on[:12]}..., this one {this_one[:12]}...); train one for "
                             "this model, or subgoal_maker=null to plan flat")
        return maker, card

    @torch.no_grad()
    def make(self, task: str, z_first: torch.Tensor, z_goal: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Latents (K, N, D) of every moment but the last, in order, and their names."""
        maker, card = self.get(task)
        k = torch.arange(maker.config.moments - 1)
        made = maker(z_first.float().expand(len(k), -1, -1), z_goal.float().expand(len(k), -1, -1), k)
        return made, list(card["moments"][: len(k)])


Reset = tuple[tuple[str, ...], np.ndarray, list[np.ndarray], np.ndarray, dict[str, Any]]


def training_resets(task: str, seeds: int, views: Sequence[str], image_size: int) -> Iterator[Reset]:
    """Training seeds 0..seeds-1 reset with the training palette and every sub-goal image the
    expert marks: (the moments' names, first frame, sub-goal images, goal image, reset info),
    views stacked. What the makers learn from and what shows their latents."""
    env = gym.make(TASK_SPECS[task].env_id, palette="train", views=views, image_size=image_size,
                   subgoals="all")
    try:
        names = env.unwrapped.subgoal_events
        if not names:
            raise ValueError(f"{task}'s expert marks no sub-goal moments: there is nothing to make "
                             "(Grasp, Push and PickPlace mark theirs)")
        for seed in range(seeds):
            obs, info = env.reset(seed=seed)
            yield (names, observed_frames(obs, views), observed_frames(info, views, "subgoal_"),
                   observed_frames(info, views, "goal_"), info)
    finally:
        env.close()


class TrainingFrames:
    """Real frames of training resets and their latents: `nearest` names the one closest to a latent."""

    def __init__(self, frames: np.ndarray, latents: torch.Tensor, labels: Sequence[str]) -> None:
        self.frames, self.latents, self.labels = frames, latents, list(labels)

    @classmethod
    @torch.no_grad()
    def collect(cls, world_model: Any, task: str, seeds: int, image_size: int,
                views: Sequence[str]) -> TrainingFrames:
        """The first frame, every sub-goal image and the goal image of training seeds 0..seeds-1."""
        frames, labels = [], []
        resets = training_resets(task, seeds, views, image_size)
        for seed, (names, first, subgoals, goal, _) in enumerate(resets):
            frames += [first, *subgoals, goal]
            labels += [f"seed {seed} start", *(f"seed {seed} {n}" for n in names), f"seed {seed} goal"]
        frames = np.stack(frames)
        latents = torch.cat([world_model.encode(frames[i:i + 64]).half() for i in range(0, len(frames), 64)])
        return cls(frames, latents, labels)

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> list[tuple[int, float]]:
        """For each latent of z (K, N, D): (index of the nearest frame, its mean L1)."""
        found = []
        for one in z.float():
            l1 = torch.cat([(part.float() - one).abs().mean(dim=(1, 2)) for part in self.latents.split(256)])
            i = int(l1.argmin())
            found.append((i, float(l1[i])))
        return found
