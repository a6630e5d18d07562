"""RetrievalMPC: latent planning through phases the agent reads from its memory of training frames.

An engineered baseline (EVAL_PROTOCOL.md), not pure latent planning: for each goal image the
memory (memory.py) returns the nearest training frames, whose robot states give the hand's
height in the goal and the height their episodes grasped at; with the locator (locator.py), one
goal image showing the object resting elsewhere is carried there. The phases (phases.py) turn
that into waypoints; every step plans toward the current one through the receding-horizon loop
every policy shares (ami_robot.agent.RecedingHorizon), and the current frame is encoded once for
the locator and the latent energy alike.

A step, per episode: move past phases that are done (target reached, plan settled, budget
spent); while carrying, read the object again on the way to it, and start the pick again when
the fingers close on nothing or drop it; then plan, all episodes in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.agent import GoalSchedule, RecedingHorizon
from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.models import next_state
from ami_robot.planners import PlannerConfig, make_config
from ami_robot.policies.latent import goal_images
from ami_robot.policies.retrieval.locator import Locator, repainted
from ami_robot.policies.retrieval.memory import FrameMemory
from ami_robot.policies.retrieval.phases import Carry, RetrievalConfig, Waypoint, carry_phases, goal_phases
from ami_robot.world_model import WorldModel


@dataclass
class Episode:
    """One episode's place in its phases."""

    phases: list[tuple[Waypoint, int]]  # (waypoint, index of the goal image it plans toward)
    goal_latents: torch.Tensor  # (G, N, D) the episode's goal images, encoded once
    carry: Carry | None  # the pick and place, when the goal image shows the object elsewhere
    retries_left: int
    index: int = 0  # the current phase
    steps: int = 0  # steps planned in it
    target: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) m; NaN: the latent energy's
    recent_xy: list[np.ndarray] = field(default_factory=list)  # TCP x, y in the current phase
    last_move: float = float("inf")  # the length of the last planned move (m)
    readings: list[np.ndarray] = field(default_factory=list)  # object x, y read on the way to it

    @property
    def phase(self) -> Waypoint:
        return self.phases[self.index][0]


class RetrievalMPC:
    """The retrieval policy: `reset_batch(obs, infos)`, then `act_batch(obs) -> (E, 7)` (or one
    episode: `reset`, `act`). Settings: RetrievalConfig's fields as keyword arguments. The memory
    and the locator default to the files beside the world model's checkpoints."""

    def __init__(self, world_model: WorldModel, memory: FrameMemory | str | Path | None = None,
                 planner: PlannerConfig | dict[str, Any] | None = None,
                 locator: Locator | str | Path | None = None, **settings: Any) -> None:
        self.config = cfg = RetrievalConfig(**settings)
        if isinstance(planner, dict):
            planner = make_config(**planner)
        self.world_model = world_model
        if memory is None or isinstance(memory, (str, Path)):
            memory = FrameMemory.load(memory or _beside_model(world_model, "memory.safetensors"))
        memory.check(world_model)  # its keys must come from this encoder
        self.memory = memory
        self.locator = None
        if cfg.locate:
            if locator is None or isinstance(locator, (str, Path)):
                locator = Locator.load(locator or _beside_model(world_model, "locator.safetensors"))
            locator.check(world_model)  # it reads this encoder's latents
            self.locator = locator
        device = next(world_model.parameters()).device
        self.loop = RecedingHorizon(planner, warm_start=cfg.warm_start, device=device)
        self.episodes: list[Episode] = []

    @property
    def planner(self) -> PlannerConfig:
        return self.loop.planner

    @property
    def planning_seconds(self) -> list[float]:
        return self.loop.planning_seconds

    @property
    def energies(self) -> list[list[float]]:
        return self.loop.energies

    def phase(self, i: int) -> Waypoint:
        """Episode i's current waypoint."""
        return self.episodes[i].phase

    # -- one episode ---------------------------------------------------------------------------------
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.reset_batch([obs], [info])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.act_batch([obs])[0]

    # -- the episode's phases ------------------------------------------------------------------------
    def waypoints(self, images: Sequence[np.ndarray], closed: bool,
                  pixels: np.ndarray | None = None) -> list[tuple[Waypoint, int]]:
        """(waypoint, goal image index) for each phase toward goal images uint8 (G, H, W, 3), from a
        hand closed or not and, for carrying, the image `pixels` (H, W, 3) it starts from."""
        return self._plan_episode(images, closed, pixels).phases

    @torch.no_grad()
    def _plan_episode(self, images: Sequence[np.ndarray], closed: bool, pixels: np.ndarray | None) -> Episode:
        cfg = self.config
        # one goal image may show the object elsewhere: the locator reads it and the current frame
        moves = self.locator is not None and len(images) == 1 and not closed and pixels is not None
        z = self.world_model.encode(np.stack([*images, pixels] if moves else list(images)))  # (G [+ 1], N, D)
        goals = z[:len(images)]  # every image encoded once, for the memory, the locator and the energy
        found = [self.memory.retrieve(g, cfg.neighbours) for g in goals]
        carry = self._carry(z[[1, 0]], np.stack([pixels, images[0]]), found[0].xyz[2]) if moves else None
        if carry is not None:
            phases = carry_phases(cfg, carry)
        else:
            phases = goal_phases(cfg, found, closed, self.memory.grasp_height())
        return Episode(phases, goals, carry, cfg.retries)

    def _carry(self, z: torch.Tensor, pixels: np.ndarray, goal_z: float) -> Carry | None:
        """A pick and place if the goal image (the second of `pixels`, latents `z`) shows the object
        resting more than `move_threshold` from where the first shows it; else None."""
        cfg = self.config
        now, there = self.locator.locate(z, self._copies(pixels))[:, :3]
        resting = there[2] - now[2] < cfg.resting  # a goal with the object lifted is a grasp, not a move
        if not (resting and np.linalg.norm(there[:2] - now[:2]) > cfg.move_threshold):
            return None
        # (the goal image's neighbours grasped other things at other heights: use the usual one)
        return Carry(now[:2], there[:2], self.memory.grasp_height(), goal_z)

    def _copies(self, pixels: np.ndarray) -> torch.Tensor | None:
        """Latents of the locator's repainted copies of `pixels` (B*K, N, D), or None for K = 0."""
        k = self.config.locate_copies
        return self.world_model.encode(repainted(pixels, k)) if k else None

    # -- a batch of episodes -------------------------------------------------------------------------
    def reset_batch(self, obs: Sequence[dict[str, np.ndarray]], infos: Sequence[dict[str, Any]],
                    seeds: Sequence[int] | None = None,
                    schedules: Sequence[GoalSchedule] | None = None) -> None:
        """Start E episodes toward the goal images of each reset info (by `goals`), or the schedules'."""
        cfg = self.config
        if schedules is None:
            images = [goal_images(info, cfg.goals) for info in infos]
        else:
            images = [s.goals for s in schedules]
        self.episodes = [self._plan_episode(g, bool(o["state"][6] > cfg.closed), o["pixels"])
                         for g, o in zip(images, obs, strict=True)]
        for ep, o in zip(self.episodes, obs, strict=True):
            ep.target = self._target(ep, o["state"])
        self.loop.reset(list(seeds) if seeds is not None else [cfg.seed + i for i in range(len(obs))])

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7): each episode plans toward its current phase's target, all in one batch."""
        cfg, started = self.config, time.perf_counter()
        for i, (ep, o) in enumerate(zip(self.episodes, obs, strict=True)):
            self._advance(i, ep, o["state"])
            ep.recent_xy.append(o["state"][:2].copy())
        pixels = np.stack([o["pixels"] for o in obs])
        seen: list[torch.Tensor] = []  # this step's frames, encoded once when first needed

        def latents() -> torch.Tensor:
            if not seen:
                seen.append(self.world_model.encode(pixels))  # (E, N, D)
            return seen[0]

        if self.locator is not None:
            self._watch_object(obs, pixels, latents)
        states = torch.as_tensor(np.stack([o["state"] for o in obs]), dtype=torch.float32)  # (E, 7)
        targets = np.stack([ep.target for ep in self.episodes])
        targets = torch.as_tensor(targets, dtype=torch.float32)  # (E, 3), NaN: the latent energy's
        grip = torch.tensor([ep.phase.gripper for ep in self.episodes])  # (E,)
        image = torch.tensor([float(ep.phase.image) for ep in self.episodes])  # (E,)
        latent_cost = None
        if bool(image.any()):
            goals = [ep.goal_latents[ep.phases[ep.index][1]] for ep in self.episodes]
            goals = torch.stack(goals)  # (E, N, D): each episode's current goal image
            latent_cost = self.world_model.planning_cost(latents()[:, None], states[:, None], goals,
                                                         self.loop.horizon, metric=cfg.energy)
        cost = phase_cost(cfg, states, targets, grip, image, latent_cost)
        actions = self.loop.act(cost, started=started)
        for ep, plan in zip(self.episodes, self.loop.plans, strict=True):
            ep.steps += 1
            ep.last_move = float(plan[0, :3].norm())
        return actions

    def _advance(self, i: int, ep: Episode, state: np.ndarray) -> None:
        """Move episode i past a phase whose target is reached, whose plan has settled, or whose
        step budget is spent."""
        while ep.index < len(ep.phases) - 1:
            waypoint = ep.phase
            fixed = ~np.isnan(ep.target)
            within = bool((np.abs(state[:3] - ep.target)[fixed] <= waypoint.tolerance).all())
            reached = waypoint.tolerance > 0 and not waypoint.image and within
            reached = reached and ep.steps >= waypoint.min_steps
            settled = waypoint.image and ep.steps >= self.config.min_image_steps
            settled = settled and ep.last_move < waypoint.settle
            if not (reached or settled or ep.steps >= waypoint.max_steps):
                return
            ep.index, ep.steps = ep.index + 1, 0
            self.loop.forget(i)  # a new target: the old plan is no warm start for it
            ep.recent_xy.append(state[:2].copy())
            previous, ep.target = ep.target, self._target(ep, state)
            if ep.phase.hold_xy and waypoint.hold_xy:
                ep.target[:2] = previous[:2]  # one vertical line through go down, close and up
            ep.recent_xy = []

    def _watch_object(self, obs: Sequence[dict[str, np.ndarray]], pixels: np.ndarray, latents: Any) -> None:
        """Carrying in closed loop. The object rests while the hand comes to it, so every frame on
        the way is another reading of where it is: the pick aims at their mean (one reading's error
        is up to 4 cm, and is smaller once the hand is near). Fingers closed past `held_max` while
        they should hold it hold nothing (a miss, or a drop): open, go back up, read again, retry."""
        cfg = self.config
        approaching = [i for i, ep in enumerate(self.episodes) if cfg.reread and ep.phase.reads_object]
        if approaching:
            readings = self.locator.locate(latents()[approaching], self._copies(pixels[approaching]))
            for i, xyz in zip(approaching, readings, strict=True):
                ep = self.episodes[i]
                ep.readings.append(xyz[:2])
                ep.carry.aim = np.mean(ep.readings, 0)
                ep.phases = carry_phases(cfg, ep.carry)
                ep.target = self._target(ep, obs[i]["state"])
        for i, (ep, o) in enumerate(zip(self.episodes, obs, strict=True)):
            if ep.phase.holds_object and o["state"][6] > cfg.held_max and ep.retries_left > 0:
                ep.retries_left -= 1
                ep.readings = []  # the failed grasp may have moved it
                ep.carry.retry_from = o["state"][:2].copy()  # the pick starts again, aimed where it was
                ep.phases, ep.index, ep.steps, ep.recent_xy = carry_phases(cfg, ep.carry), 0, 0, []
                self.loop.forget(i)
                ep.target = self._target(ep, o["state"])

    def _target(self, ep: Episode, state: np.ndarray) -> np.ndarray:
        target = ep.phase.xyz.copy()
        if ep.phase.hold_xy:  # straight down from where the last phase ended (its last steps: the
            recent = ep.recent_xy[-self.config.xy_from_last:] or [state[:2]]  # planner jitters)
            target[:2] = np.median(recent, axis=0)
        return target


def phase_cost(cfg: RetrievalConfig, states: torch.Tensor, targets: torch.Tensor, grip: torch.Tensor,
               image: torch.Tensor, latent_cost: Any) -> Any:
    """The cost of E episodes' candidates (E*S, H, 7) -> (E*S,): `state_weight` per m of TCP error
    on the coordinates each target fixes (targets (E, 3), NaN: free) and `gripper_weight` per unit
    of gripper error (grip (E,)) where the plan ends, plus the latent energy where image (E,) is 1."""
    mask, targets = ~torch.isnan(targets), torch.nan_to_num(targets)
    e = len(states)

    def cost(actions: torch.Tensor) -> torch.Tensor:  # (E*S, H, 7) -> (E*S,)
        rows = actions.shape[0] // e
        s = states.repeat_interleave(rows, 0)
        for t in range(actions.shape[1]):
            s = next_state(s, actions[:, t])  # the robot state the plan ends in
        error = (s[:, :3] - targets.repeat_interleave(rows, 0)) * mask.repeat_interleave(rows, 0)
        total = cfg.state_weight * error.norm(dim=-1)
        total = total + cfg.gripper_weight * (s[:, 6] - grip.repeat_interleave(rows, 0)).abs()
        if latent_cost is not None:
            total = total + image.repeat_interleave(rows, 0) * latent_cost(actions)
        return total

    return cost


def _beside_model(world_model: WorldModel, name: str) -> Path:
    """`name` in the folder the world model was loaded from (where `ami-robot memory`, `locator`
    and `reproduce` write it), else among the shipped checkpoints."""
    return (world_model.checkpoint_dir or SHIPPED_DIR) / name
