"""Policies that the eval and bench apps run side by side, all behind one small interface.

    reset(obs, info)   start an episode; info is the env's reset info (goal images, sub-goals, ...)
    act(obs) -> action float32 (7,)

A policy that can plan several episodes in one batch also offers `reset_batch(obs, infos)` and
`act_batch(obs) -> (E, 7)`; the runner uses those when present. A user's own policy needs only
reset/act (and an `env` constructor argument if it wants privileged access to the simulator).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ami_robot.agent import GoalSchedule, LatentCostModel, MPCAgent
from ami_robot.models import next_state
from ami_robot.planners import PlannerConfig, make_config, plan, shift_plan
from ami_robot.world_model import WorldModel


@runtime_checkable
class Policy(Protocol):
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


GOAL_MODES = ("final", "subgoals")


def goal_schedule(info: dict[str, Any], goals: str, budgets: Sequence[int]) -> GoalSchedule:
    """The goal images an episode's reset info offers, as a schedule.

    final: the final goal image alone. subgoals: the env's sub-goal images (PickPlace: grasped,
    above the target, placed) with `budgets` steps for each but the last, which keeps the rest;
    envs without sub-goals fall back to the final goal.
    """
    if goals not in GOAL_MODES:
        raise ValueError(f"goals must be one of {GOAL_MODES}, got {goals!r}")
    subgoals = info.get("subgoal_pixels") or []
    if goals == "final" or not subgoals:
        return GoalSchedule([info["goal_pixels"]])
    images = list(subgoals[:-1]) + [info["goal_pixels"]]  # the final image is the last sub-goal
    return GoalSchedule(images, budgets=tuple(budgets)[: len(images) - 1])


class LatentMPC:
    """V-JEPA 2-AC planning: the world model's latent energy, a planner, goal images from the env.

    Plans every episode of a batch in one model call per planner iteration (`act_batch`); the
    single-episode `act` is the same computation with a batch of one.
    """

    def __init__(self, world_model: WorldModel, planner: PlannerConfig | dict[str, Any] | None = None,
                 goals: str = "final", subgoal_budgets: Sequence[int] = (4, 10),
                 energy: str = "l1", warm_start: str = "zero", seed: int = 0) -> None:
        if isinstance(planner, dict):
            planner = make_config(**planner)
        self.world_model = world_model
        self.agent = MPCAgent(LatentCostModel(world_model), planner, warm_start=warm_start, seed=seed)
        self.planner = self.agent.planner
        self.goals, self.subgoal_budgets, self.energy_metric = goals, tuple(subgoal_budgets), energy
        self.warm_start, self.seed = warm_start, seed
        goal_schedule({"goal_pixels": None}, goals, subgoal_budgets)  # validates `goals` early

    @property
    def device(self) -> torch.device:
        return next(self.world_model.parameters()).device

    # -- one episode -------------------------------------------------------------------------------
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.reset_batch([obs], [info])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.act_batch([obs])[0]

    # -- a batch of episodes -----------------------------------------------------------------------
    def reset_batch(self, obs: Sequence[dict[str, np.ndarray]], infos: Sequence[dict[str, Any]],
                    seeds: Sequence[int] | None = None,
                    schedules: Sequence[GoalSchedule] | None = None) -> None:
        """Start E episodes; goals from each reset info (by `goals`), or the given schedules."""
        if schedules is None:
            schedules = [goal_schedule(info, self.goals, self.subgoal_budgets) for info in infos]
        self.schedules = list(schedules)
        seeds = list(seeds) if seeds is not None else [self.seed + i for i in range(len(infos))]
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in seeds]
        self._goal_latents: list[dict[int, torch.Tensor]] = [{} for _ in infos]
        self.plans: list[torch.Tensor | None] = [None] * len(infos)
        self.planning_seconds: list[float] = []
        self.energies: list[list[float]] = [[] for _ in infos]

    def _goal_latent(self, i: int, index: int) -> torch.Tensor:
        """Episode i's goal image `index`, encoded once per episode -> (N, D)."""
        if index not in self._goal_latents[i]:
            self._goal_latents[i][index] = self.world_model.encode(self.schedules[i].goals[index][None])[0]
        return self._goal_latents[i][index]

    def _plan(self, cost: Any, e: int) -> torch.Tensor:
        """Plans (E, H, 7) for E episodes, warm-started from their last plans when all have one."""
        init = None
        if self.warm_start != "none" and all(p is not None for p in self.plans):
            init = torch.stack([shift_plan(p, fill=self.warm_start) for p in self.plans])  # (E, H, 7)
        return plan(cost, self.planner, init_mean=init, num_problems=e, generator=self.generators,
                    device=self.device)

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7) for E episodes, planned in one batch."""
        wm, e = self.world_model, len(obs)
        start = time.perf_counter()
        goals = [self._goal_latent(i, schedule.index) for i, schedule in enumerate(self.schedules)]
        z = wm.encode(np.stack([o["pixels"] for o in obs]))  # (E, N, D)
        states = torch.as_tensor(np.stack([o["state"] for o in obs]), dtype=torch.float32)
        cost = wm.planning_cost(z[:, None], states[:, None], torch.stack(goals), self.planner.horizon,
                                metric=self.energy_metric)
        plans = self._plan(cost, e)  # (E, H, 7)
        elapsed = time.perf_counter() - start
        final_energy = cost(plans)  # (E,) the energy each plan reaches
        actions = plans[:, 0].cpu().numpy().astype(np.float32)
        for i, schedule in enumerate(self.schedules):
            energy = float(final_energy[i])
            self.energies[i].append(energy)
            self.plans[i] = None if schedule.step(energy) else plans[i]
        self.planning_seconds.append(elapsed / e)  # seconds per action, shared by the batch
        return actions


CLEARANCE = 0.07  # m above the grasp height: the open hand's approach, clear of the object
CARRY_LIFT = 0.08  # m above the grasp height: a carried object clears the table


class RetrievalMPC(LatentMPC):
    """Latent planning in phases the agent reads from its memory of training frames.

    Greedy latent planning cannot grasp (benchmarks/bench_expert_energy.py): the open hand must
    go down around the object, which looks less like the goal than hovering does, and the
    gripper is invisible at 64 px. So for each goal image (the final one, or the env's
    sub-goals) the memory (ami_robot.memory) returns the k nearest training frames, whose robot
    states give the hand's height in the goal and the height their episodes grasped at. A grasp
    (or release) is then: line up with the goal image (the latent energy places x and y, a state
    term the retrieved height), go straight down, close (or open), and plan to the goal image,
    x and y held. Costs: `state_weight` per m of TCP error on the coordinates a phase fixes,
    `gripper_weight` per unit of gripper error, plus the world model's latent energy in the
    goal-image phases. A phase ends when its target is reached, its plan settles, or its budget
    is spent. `waypoints` says when the gripper changes. With a locator (`locate`), one goal image
    showing the object resting elsewhere is carried there (`pick_and_place`), in closed loop
    (`watch_object`: `reread`, `retries`).
    """

    def __init__(self, world_model: WorldModel, memory: Any = None,
                 planner: PlannerConfig | dict[str, Any] | None = None, goals: str = "final",
                 neighbours: int = 10, grasp_votes: int = 1, state_weight: float = 5.0,
                 gripper_weight: float = 0.5,
                 align_steps: int = 14, subgoal_steps: int = 12, settle: float = 0.005,
                 align: str = "latent", locate: bool = False, locator: Any = None,
                 move_threshold: float = 0.05, locate_copies: int = 8, reread: bool = True,
                 retries: int = 2, energy: str = "l1", warm_start: str = "zero", seed: int = 0) -> None:
        from ami_robot.memory import FrameMemory

        super().__init__(world_model, planner, goals=goals, energy=energy, warm_start=warm_start, seed=seed)
        if memory is None or isinstance(memory, (str, Path)):
            memory = FrameMemory.load(memory or _beside_model(world_model, "memory.safetensors"))
        memory.check(world_model)  # its keys must come from this encoder
        if align not in ("latent", "memory"):
            raise ValueError(f"align must be 'latent' (the world model places x, y) or 'memory' (the "
                             f"neighbours' median TCP, no world model: an ablation); got {align!r}")
        if min(neighbours, align_steps, subgoal_steps) < 1 or min(state_weight, gripper_weight, settle) < 0:
            raise ValueError("neighbours, align_steps and subgoal_steps must be >= 1; the weights and "
                             "settle >= 0")
        self.memory, self.neighbours = memory, neighbours
        self.grasp_votes = grasp_votes
        self.min_image_steps = 4  # an image phase plans at least this many steps before it may settle
        self.state_weight, self.gripper_weight = state_weight, gripper_weight
        self.align_steps, self.subgoal_steps, self.settle = align_steps, subgoal_steps, settle
        self.align = align
        self.locator, self.move_threshold, self.locate_copies = None, move_threshold, locate_copies
        if retries < 0:
            raise ValueError(f"retries must be >= 0 (grasps tried again after closing on nothing); "
                             f"got {retries}")
        self.reread, self.retries = reread, retries
        if locate:
            from ami_robot.locator import Locator

            if locator is None or isinstance(locator, (str, Path)):
                locator = Locator.load(locator or _beside_model(world_model, "locator.safetensors"))
            locator.check(world_model)  # it reads this encoder's latents
            self.locator = locator

    def move_object(self, pixels: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(object now, object in the goal), both xyz from the locator, if the goal image shows the
        object resting more than `move_threshold` away from where it is now; else None."""
        if self.locator is None:
            return None
        images = np.stack([pixels, goal])
        now, there = self.locator.locate(self.world_model, images, self.locate_copies)[:, :3]
        resting = there[2] - now[2] < 0.03  # a goal with the object lifted is a grasp, not a move
        return (now, there) if resting and np.linalg.norm(there[:2] - now[:2]) > self.move_threshold else None

    def pick_and_place(self, now: np.ndarray, there: np.ndarray, grasp_height: float) -> list[Any]:
        """Waypoints that carry the object from `now` to `there` (the locator's estimates): over
        it, straight down, close, up, across, down, open. Lining up with the goal image instead of
        `there` was worse: the latent energy pulled a carried cube 3 cm off (Push seed 10000)."""
        from ami_robot.memory import Waypoint

        hover, carry = grasp_height + CLEARANCE, grasp_height + CARRY_LIFT

        def at(xy: np.ndarray, z: float) -> np.ndarray:
            return np.array([xy[0], xy[1], z])

        # rereading: the approach lasts two frames at least, the one it starts from and one from near
        # the object (their mean is within 1.5 cm 42 times in 49, the first frame alone 38, on the
        # development seeds: benchmarks/bench_reread.py)
        reads = 2 * int(self.reread)
        return [Waypoint("over the object", at(now, hover), 0.0, 16, tolerance=0.01, min_steps=reads),
                Waypoint("go down", at(now, grasp_height), 0.0, 8, tolerance=0.008),
                Waypoint("close", at(now, grasp_height), 1.0, 2, tolerance=0.0),
                Waypoint("lift", at(now, carry), 1.0, 8, tolerance=0.015),
                Waypoint("carry", at(there, carry), 1.0, 16, tolerance=0.01),
                Waypoint("put down", at(there, grasp_height), 1.0, 8, tolerance=0.008),
                Waypoint("open", at(there, grasp_height), 0.0, 2, tolerance=0.0)]

    def waypoints(self, images: Sequence[np.ndarray], closed: bool,
                  pixels: np.ndarray | None = None) -> list[tuple[Any, int]]:
        """(waypoint, goal image index) for each phase, from the goal images in order.

        The gripper is 1-2 pixels at 64 px and the encoder does not see it (probe R^2 0.01), so
        it cannot come from the latent energy. Several goal images are read as one pick and
        place: an open hand grasps at the first and releases at the last. A single goal image
        is a grasp if at least `grasp_votes` of its neighbours hold something (their fingers
        stopped short of closed). Grasps go down to the height the neighbours' episodes grasped
        at; a release goes down to the height the hand grasped from.
        """
        from ami_robot.memory import Waypoint

        nan = float("nan")
        found = [self.memory.retrieve(self.world_model, image, self.neighbours) for image in images]
        heights = [f.grasp_xyz[2] for f in found if f.grasp_xyz is not None]
        grasp_height = heights[0] if heights else self.memory.grasp_height()
        several = len(found) > 1
        grasp = not closed and (several or found[0].holding >= self.grasp_votes)
        release = several and (closed or grasp)
        phases: list[tuple[Any, int]] = []
        move = None if several or closed or pixels is None else self.move_object(pixels, images[0])
        if move is not None:  # the object must go elsewhere: carry it there and put it down
            # (the goal image's neighbours grasped other things at other heights: use the usual one)
            phases = [(w, 0) for w in self.pick_and_place(*move, grasp_height=self.memory.grasp_height())]
            # then up, x and y held, to the height the goal image shows (its latent energy as well)
            up = np.array([nan, nan, found[0].xyz[2]])
            return phases + [(Waypoint("goal image 0", up, 0.0, 10**6, image=self.align == "latent",
                                       hold_xy=True, tolerance=0.0), 0)]
        image = self.align == "latent"
        for i, retrieved in enumerate(found):
            last = i == len(found) - 1
            height = np.array([nan, nan, retrieved.xyz[2]])  # x and y from the latent energy
            if not image:  # the ablation: the neighbours' median TCP, no latent energy anywhere
                height = retrieved.xyz.copy()
            change = (grasp and i == 0) or (release and last)
            if change:  # line up as the goal image shows, go straight down, change the gripper
                hand, bottom = float(closed), np.array([nan, nan, grasp_height])
                line_up = Waypoint("line up", height, hand, self.align_steps, image=image, settle=self.settle,
                                   tolerance=0.0 if image else 0.01)
                phases += [(line_up, i),
                           (Waypoint("go down", bottom, hand, 8, tolerance=0.008, hold_xy=True), i),
                           (Waypoint("open" if closed else "close", bottom, 1.0 - hand, 2, tolerance=0.0,
                                     hold_xy=True), i)]
                closed = not closed
            # after a grasp or release the hand goes straight up (x, y held) to the goal's height
            budget = 10**6 if last else self.subgoal_steps  # the last goal image keeps the rest
            phases.append((Waypoint(f"goal image {i}", height, float(closed), budget, image=image,
                                    settle=0.0 if last else self.settle, hold_xy=change,
                                    tolerance=0.0 if image or last else 0.02), i))
        return phases

    def reset_batch(self, obs: Sequence[dict[str, np.ndarray]], infos: Sequence[dict[str, Any]],
                    seeds: Sequence[int] | None = None,
                    schedules: Sequence[GoalSchedule] | None = None) -> None:
        super().reset_batch(obs, infos, seeds=seeds, schedules=schedules)
        from ami_robot.memory import CLOSED

        self.phases = [self.waypoints(s.goals, bool(o["state"][6] > CLOSED), o["pixels"])
                       for s, o in zip(self.schedules, obs, strict=True)]
        self.phase_index, self.phase_steps = [0] * len(obs), [0] * len(obs)
        self.recent_xy: list[list[np.ndarray]] = [[] for _ in obs]  # TCP x, y in the current phase
        self.targets = [self._target(i, o["state"]) for i, o in enumerate(obs)]
        self._last_move = [float("inf")] * len(obs)  # the length of each episode's last planned move
        self.readings: list[list[np.ndarray]] = [[] for _ in obs]  # object x, y read on the way to it
        self.retries_left = [self.retries] * len(obs)

    def watch_object(self, obs: Sequence[dict[str, np.ndarray]]) -> None:
        """Carrying in closed loop. The object rests while the hand comes to it, so every frame on
        the way is another reading of where it is: the pick aims at their mean (one reading's error
        is up to 4 cm, and is smaller once the hand is near). Fingers closed past HELD_MAX between
        closing and opening hold nothing (a miss, or a drop): open, go back up, read again, retry."""
        from ami_robot.memory import HELD_MAX

        approaching = [i for i in range(len(obs)) if self.reread and self.phase(i).name == "over the object"]
        if approaching:
            pixels = np.stack([obs[i]["pixels"] for i in approaching])
            readings = self.locator.locate(self.world_model, pixels, self.locate_copies)
            for i, xyz in zip(approaching, readings, strict=True):
                self.readings[i].append(xyz[:2])
                self._replan_pick(i, np.mean(self.readings[i], 0), obs[i]["state"])
        for i, o in enumerate(obs):
            # "put down" too: a cube that slips on the carry's last step is seen there (Push 10040)
            empty = self.phase(i).name in ("lift", "carry", "put down") and o["state"][6] > HELD_MAX
            if empty and self.retries_left[i] > 0:
                self.retries_left[i] -= 1
                self.readings[i] = []  # the failed grasp may have moved it
                start, _ = self._pick_span(i)
                self._replan_pick(i, self.phases[i][start][0].xyz[:2], o["state"], retry=True)  # the last aim

    def _replan_pick(self, i: int, object_xy: np.ndarray, state: np.ndarray, retry: bool = False) -> None:
        """Episode i's pick and place, aimed at `object_xy`; `retry`: after opening and going up."""
        from ami_robot.memory import Waypoint

        start, end = self._pick_span(i)
        old = self.phases[i][start:end]
        there = next(w.xyz for w, _ in old if w.name == "carry")  # where the goal image shows the object
        pick = [(w, 0) for w in self.pick_and_place(object_xy, there, self.memory.grasp_height())]
        rest = self.phases[i][end:]
        if retry:
            up = Waypoint("open and up", np.array([*state[:2], pick[0][0].xyz[2]]), 0.0, 6, tolerance=0.01)
            self.phases[i] = [(up, 0)] + pick + rest
            self.phase_index[i], self.phase_steps[i], self.plans[i], self.recent_xy[i] = 0, 0, None, []
        else:
            self.phases[i] = self.phases[i][:start] + pick + rest
        self.targets[i] = self._target(i, state)

    def _pick_span(self, i: int) -> tuple[int, int]:
        """Where episode i's `pick_and_place` phases lie in its phase list: ("over the object" .. "open")."""
        names = [w.name for w, _ in self.phases[i]]
        start = names.index("over the object")
        return start, names.index("open", start) + 1

    def phase(self, i: int) -> Any:
        """Episode i's current waypoint."""
        return self.phases[i][self.phase_index[i]][0]

    def _target(self, i: int, state: np.ndarray) -> np.ndarray:
        waypoint = self.phase(i)
        target = waypoint.xyz.copy()
        if waypoint.hold_xy:  # straight down from where the last phase ended (its last 3 steps: the
            target[:2] = np.median(self.recent_xy[i][-3:] or [state[:2]], axis=0)  # planner jitters)
        return target

    def _advance(self, i: int, state: np.ndarray) -> None:
        """Move episode i past a phase whose target is reached, whose plan has settled, or whose
        step budget is spent."""
        while self.phase_index[i] < len(self.phases[i]) - 1:
            waypoint, steps = self.phase(i), self.phase_steps[i]
            fixed = ~np.isnan(self.targets[i])
            error = np.abs(state[:3] - self.targets[i])[fixed]
            within = bool((error <= waypoint.tolerance).all())
            reached = waypoint.tolerance > 0 and not waypoint.image and within and steps >= waypoint.min_steps
            settled = waypoint.image and steps >= self.min_image_steps
            settled = settled and self._last_move[i] < waypoint.settle
            if not (reached or settled or steps >= waypoint.max_steps):
                return
            self.phase_index[i] += 1
            self.phase_steps[i], self.plans[i] = 0, None
            self.recent_xy[i].append(state[:2].copy())
            previous = self.targets[i]
            self.targets[i] = self._target(i, state)
            if self.phase(i).hold_xy and self.phases[i][self.phase_index[i] - 1][0].hold_xy:
                self.targets[i][:2] = previous[:2]  # one vertical line through go down, close and up
            self.recent_xy[i] = []

    @torch.no_grad()
    def act_batch(self, obs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions (E, 7): each episode plans toward its current phase's target, all in one batch."""
        wm, e = self.world_model, len(obs)
        start = time.perf_counter()
        for i in range(e):
            self._advance(i, obs[i]["state"])
            self.recent_xy[i].append(obs[i]["state"][:2].copy())
        if self.locator is not None:
            self.watch_object(obs)
        states = torch.as_tensor(np.stack([o["state"] for o in obs]), dtype=torch.float32)  # (E, 7)
        targets = torch.as_tensor(np.stack(self.targets), dtype=torch.float32)  # (E, 3), NaN: free
        mask = ~torch.isnan(targets)
        targets = torch.nan_to_num(targets)
        grip = torch.tensor([self.phase(i).gripper for i in range(e)])  # (E,)
        image = torch.tensor([float(self.phase(i).image) for i in range(e)])  # (E,)
        latent_cost = None
        if bool(image.any()):
            goals = [self._goal_latent(i, self.phases[i][self.phase_index[i]][1]) for i in range(e)]
            z = wm.encode(np.stack([o["pixels"] for o in obs]))  # (E, N, D)
            latent_cost = wm.planning_cost(z[:, None], states[:, None], torch.stack(goals),
                                           self.planner.horizon, metric=self.energy_metric)

        def cost(actions: torch.Tensor) -> torch.Tensor:  # (E*S, H, 7) -> (E*S,)
            rows = actions.shape[0] // e
            s = states.repeat_interleave(rows, 0)
            for t in range(actions.shape[1]):
                s = next_state(s, actions[:, t])  # the robot state the plan ends in
            error = (s[:, :3] - targets.repeat_interleave(rows, 0)) * mask.repeat_interleave(rows, 0)
            total = self.state_weight * error.norm(dim=-1)
            total = total + self.gripper_weight * (s[:, 6] - grip.repeat_interleave(rows, 0)).abs()
            if latent_cost is not None:
                total = total + image.repeat_interleave(rows, 0) * latent_cost(actions)
            return total

        plans = self._plan(cost, e)  # (E, H, 7)
        elapsed = time.perf_counter() - start
        final_energy = cost(plans)
        for i in range(e):
            self.energies[i].append(float(final_energy[i]))
            self.plans[i] = plans[i]
            self.phase_steps[i] += 1
            self._last_move[i] = float(plans[i, 0, :3].norm())
        self.planning_seconds.append(elapsed / e)
        return plans[:, 0].cpu().numpy().astype(np.float32)


def _beside_model(world_model: WorldModel, name: str) -> Path:
    """`name` in the folder the world model was loaded from (where `ami-robot memory`, `locator`
    and `reproduce` write it), else among the shipped checkpoints."""
    if world_model.checkpoint_dir is not None:
        return world_model.checkpoint_dir / name
    from ami_robot.apps.common import shipped_checkpoint_dir

    return Path(shipped_checkpoint_dir()) / name


class ExpertPolicy:
    """The task's scripted expert with privileged simulator state: the benchmark's upper bound."""

    needs_env = True

    def __init__(self, env: Any, noise_std: float = 0.0, seed: int | None = None) -> None:
        from ami_robot.envs import ScriptedExpert  # the envs' own expert, used as it is

        self.expert = ScriptedExpert(env, noise_std=noise_std, seed=seed)

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.expert.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.expert.act(obs), dtype=np.float32)


class RandomPolicy:
    """Uniform random actions in the env's action Box: the benchmark's floor."""

    def __init__(self, seed: int = 0, low: Sequence[float] | None = None,
                 high: Sequence[float] | None = None) -> None:
        from ami_robot.envs import ACTION_HIGH, ACTION_LOW

        self.low = np.asarray(ACTION_LOW if low is None else low, np.float32)
        self.high = np.asarray(ACTION_HIGH if high is None else high, np.float32)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.rng = np.random.default_rng([self.seed, int(info.get("seed", 0))])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


# State costs that let CEM on the simulator solve each task (benchmarks/bench_planners.py).
SIM_TASK_COSTS: dict[str, dict[str, float]] = {
    "Reach": {"tcp": 1.0, "object": 0.0},
    "Push": {"tcp": 0.0, "object": 1.0, "pusher": 0.5},
}


class SimMPC:
    """CEM with the true simulator as its model and a state cost: the planner's upper bound.

    Each candidate is played in the env's own simulation from a snapshot (privileged), so its
    cost is exact; the gap between this row and the latent planner's is model error.
    """

    needs_env = True

    def __init__(self, env: Any, planner: PlannerConfig | dict[str, Any] | None = None,
                 cost: dict[str, float] | None = None, seed: int = 0) -> None:
        from ami_robot.sim_model import SimCostModel, StateCost

        if isinstance(planner, dict):
            planner = make_config(**planner)
        self.env = env
        state_cost = StateCost(**(cost or SIM_TASK_COSTS.get(env.task_name, {})))
        self.model = SimCostModel(env, state_cost)
        self.agent = MPCAgent(self.model, planner, seed=seed)
        self.seed = seed

    @property
    def planning_seconds(self) -> list[float]:
        return self.agent.planning_seconds

    @property
    def energies(self) -> list[float]:
        return self.agent.energies

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.model.set_goals_from_info(info)
        self.agent.reset(info["goal_pixels"], seed=self.seed + int(info.get("seed", 0)))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.agent.act(obs)
