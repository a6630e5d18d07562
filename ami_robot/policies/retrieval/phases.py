"""The retrieval policy's phases: its settings, and the waypoints it plans through, in order.

Greedy latent planning cannot grasp (benchmarks/bench_expert_energy.py): the open hand must go
down around the object, which looks less like the goal than hovering does, and the gripper is
1-2 pixels at 64 px (probe R^2 0.01), so it cannot come from the latent energy either. The policy
therefore plans through waypoints, each a target for the TCP and the gripper, with or without the
goal image's latent energy:

- toward goal images (`goal_phases`): for each goal image, what the memory's neighbours say about
  it; where the gripper changes, line up as the goal image shows, go straight down, close (or
  open), then plan to the goal image with x and y held;
- carrying (`carry_phases`), when one goal image shows the object resting elsewhere: over the
  object, down, close, lift, across, down, open, then up as the goal image shows. The hover and
  carry heights are the envs' scripted expert's (ami_robot.envs.experts); the budgets and
  tolerances are this policy's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ami_robot.envs.experts import CARRY_LIFT, CLEARANCE
from ami_robot.policies.latent import GOAL_MODES
from ami_robot.policies.retrieval.memory import CLOSED, HELD_MAX, Retrieval
from ami_robot.world_model import METRICS

NAN = float("nan")


@dataclass(frozen=True)
class RetrievalConfig:
    """Every setting and number the retrieval policy uses. Lengths in m, budgets in steps."""

    # -- what it plans toward
    goals: str = "final"  # final: the final goal image; subgoals: the env's sub-goal images
    neighbours: int = 10  # training frames retrieved per goal image
    grasp_votes: int = 1  # one goal image is a grasp if this many neighbours hold something
    align: str = "latent"  # latent: x, y from the latent energy; memory: the neighbours' TCP (ablation)
    closed: float = CLOSED  # the hand counts as closed above this gripper state (the memory's rule)
    held_max: float = HELD_MAX  # fingers closed past this hold nothing (the memory's rule)
    # -- the cost: state terms, plus the latent energy in the goal-image phases
    state_weight: float = 5.0  # per m of TCP error on the coordinates a phase fixes
    gripper_weight: float = 0.5  # per unit of gripper error
    energy: str = "l1"  # the latent energy's metric (WorldModel.energy)
    # -- toward goal images
    align_steps: int = 14  # the most steps spent lining up before going down
    subgoal_steps: int = 12  # the most steps on a goal image that is not the last
    last_steps: int = 10**6  # the last goal image keeps the rest of the episode
    settle: float = 0.005  # an image phase ends once the planned move is shorter than this...
    min_image_steps: int = 4  # ...and it has planned at least this many steps
    descend_steps: int = 8  # going straight down (to grasp, release or put down)
    descend_tolerance: float = 0.008
    gripper_steps: int = 2  # closing or opening
    line_up_tolerance: float = 0.01  # align=memory: lining up by the state term alone
    subgoal_tolerance: float = 0.02  # align=memory: a goal image that is not the last
    xy_from_last: int = 3  # x, y held from the median of the last phase's last steps (the planner jitters)
    # -- carrying, when one goal image shows the object resting elsewhere (needs the locator)
    locate: bool = False  # read where the object is now and where the goal image shows it
    locate_copies: int = 8  # the locator reads each image and this many repainted copies (median)
    move_threshold: float = 0.05  # carried if the goal shows it this far from where it is
    resting: float = 0.03  # ... and no higher than this above where it is (higher: a grasp, not a move)
    clearance: float = CLEARANCE  # hover height above the grasp height (the expert's)
    carry_lift: float = CARRY_LIFT  # carry height above the grasp height (the expert's)
    approach_steps: int = 16  # over the object
    approach_tolerance: float = 0.01
    lift_steps: int = 8
    lift_tolerance: float = 0.015
    carry_steps: int = 16  # across, to where the goal image shows it
    carry_tolerance: float = 0.01
    reread: bool = True  # read the object again from every frame on the way to it; aim at the mean
    reads: int = 2  # rereading: the approach lasts at least this many frames
    retries: int = 2  # grasps tried again when the fingers close on nothing or drop the object
    retry_up_steps: int = 6  # after a miss: open and go back up before the next approach
    retry_up_tolerance: float = 0.01
    # -- planning
    warm_start: str = "zero"  # RecedingHorizon's warm start
    seed: int = 0  # episode e plans with seed + e unless the runner gives seeds

    def __post_init__(self) -> None:
        if self.goals not in GOAL_MODES:
            raise ValueError(f"goals must be one of {GOAL_MODES}, got {self.goals!r}")
        if self.align not in ("latent", "memory"):
            raise ValueError(f"align must be 'latent' (the world model places x, y) or 'memory' (the "
                             f"neighbours' median TCP, no world model: an ablation); got {self.align!r}")
        if self.energy not in METRICS:
            raise ValueError(f"energy must be one of {METRICS}, got {self.energy!r}")
        if min(self.neighbours, self.align_steps, self.subgoal_steps) < 1 or min(
                self.state_weight, self.gripper_weight, self.settle) < 0:
            raise ValueError("neighbours, align_steps and subgoal_steps must be >= 1; the weights and "
                             "settle >= 0")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0 (grasps tried again after closing on nothing); "
                             f"got {self.retries}")
        steps = (self.last_steps, self.min_image_steps, self.descend_steps, self.gripper_steps,
                 self.xy_from_last, self.approach_steps, self.lift_steps, self.carry_steps,
                 self.retry_up_steps)
        if min(steps) < 1 or min(self.locate_copies, self.reads) < 0:
            raise ValueError("phase budgets and xy_from_last must be >= 1; locate_copies and reads >= 0")


@dataclass(frozen=True)
class Waypoint:
    """One phase: where the TCP should go (NaN leaves a coordinate to the latent energy; `hold_xy`
    takes x and y from where the last phase ended), the gripper (0 open, 1 closed), and when the
    phase ends: its target reached within `tolerance` (0: never) after `min_steps`, its plan
    settled (an image phase), or `max_steps` spent."""

    name: str
    xyz: np.ndarray  # (3,)
    gripper: float
    max_steps: int
    tolerance: float
    image: bool = False  # the goal image's latent energy is part of the cost
    hold_xy: bool = False
    settle: float = 0.0  # an image phase ends when the planned move is shorter than this
    min_steps: int = 0
    reads_object: bool = False  # the locator reads the object again from every frame (the approach)
    holds_object: bool = False  # the fingers must hold the object: closed past held_max, it was missed


@dataclass
class Carry:
    """A pick and place: where it picks, where it places, and from where a retry starts."""

    aim: np.ndarray  # (2,) where the hand goes down: the locator's reading (the mean of its readings)
    there: np.ndarray  # (2,) where the goal image shows the object
    grasp_height: float  # the training grasps' usual TCP height
    goal_z: float  # the TCP height the goal image shows (its neighbours' median)
    retry_from: np.ndarray | None = None  # (2,) where the hand opened after its last miss


def goal_phases(cfg: RetrievalConfig, found: Sequence[Retrieval], closed: bool,
                usual_grasp_height: float) -> list[tuple[Waypoint, int]]:
    """(waypoint, goal image index) for each phase toward the goal images, in order.

    Several goal images are read as one pick and place: an open hand grasps at the first and
    releases at the last. A single goal image is a grasp if at least `grasp_votes` of its
    neighbours hold something. Grasps go down to the height the neighbours' episodes grasped at;
    a release goes down to the height the hand grasped from.
    """
    heights = [f.grasp_xyz[2] for f in found if f.grasp_xyz is not None]
    grasp_height = heights[0] if heights else usual_grasp_height
    several = len(found) > 1
    grasp = not closed and (several or found[0].holding >= cfg.grasp_votes)
    release = several and (closed or grasp)
    image = cfg.align == "latent"
    phases: list[tuple[Waypoint, int]] = []
    for i, retrieved in enumerate(found):
        last = i == len(found) - 1
        height = np.array([NAN, NAN, retrieved.xyz[2]])  # x and y from the latent energy
        if not image:  # the ablation: the neighbours' median TCP, no latent energy anywhere
            height = retrieved.xyz.copy()
        change = (grasp and i == 0) or (release and last)
        if change:  # line up as the goal image shows, go straight down, change the gripper
            hand, bottom = float(closed), np.array([NAN, NAN, grasp_height])
            phases += [
                (Waypoint("line up", height, hand, cfg.align_steps, 0.0 if image else cfg.line_up_tolerance,
                          image=image, settle=cfg.settle), i),
                (Waypoint("go down", bottom, hand, cfg.descend_steps, cfg.descend_tolerance,
                          hold_xy=True), i),
                (Waypoint("open" if closed else "close", bottom, 1.0 - hand, cfg.gripper_steps, 0.0,
                          hold_xy=True), i)]
            closed = not closed
        # after a grasp or release the hand goes straight up (x, y held) to the goal's height
        phases.append((Waypoint(f"goal image {i}", height, float(closed),
                                cfg.last_steps if last else cfg.subgoal_steps,
                                0.0 if image or last else cfg.subgoal_tolerance, image=image,
                                settle=0.0 if last else cfg.settle, hold_xy=change), i))
    return phases


def carry_phases(cfg: RetrievalConfig, carry: Carry) -> list[tuple[Waypoint, int]]:
    """The phases of a pick and place toward the one goal image, in order (after a miss, from
    opening and going back up). Lining up with the goal image instead of the locator's `there`
    was worse: the latent energy pulled a carried cube 3 cm off (Push seed 10000)."""
    low = carry.grasp_height
    hover, high = low + cfg.clearance, low + cfg.carry_lift

    def at(xy: np.ndarray, z: float) -> np.ndarray:
        return np.array([xy[0], xy[1], z])

    aim, there = carry.aim, carry.there
    phases = []
    if carry.retry_from is not None:
        phases.append(Waypoint("open and up", at(carry.retry_from, hover), 0.0, cfg.retry_up_steps,
                               cfg.retry_up_tolerance))
    # rereading: the approach lasts two frames at least, the one it starts from and one from near the
    # object (their mean is within 1.5 cm 42 times in 49, the first frame alone 38, on the
    # development seeds: benchmarks/bench_reread.py)
    phases += [
        Waypoint("over the object", at(aim, hover), 0.0, cfg.approach_steps, cfg.approach_tolerance,
                 min_steps=cfg.reads if cfg.reread else 0, reads_object=True),
        Waypoint("go down", at(aim, low), 0.0, cfg.descend_steps, cfg.descend_tolerance),
        Waypoint("close", at(aim, low), 1.0, cfg.gripper_steps, 0.0),
        Waypoint("lift", at(aim, high), 1.0, cfg.lift_steps, cfg.lift_tolerance, holds_object=True),
        Waypoint("carry", at(there, high), 1.0, cfg.carry_steps, cfg.carry_tolerance, holds_object=True),
        # "put down" watches too: a cube that slips on the carry's last step is seen there (Push 10040)
        Waypoint("put down", at(there, low), 1.0, cfg.descend_steps, cfg.descend_tolerance,
                 holds_object=True),
        Waypoint("open", at(there, low), 0.0, cfg.gripper_steps, 0.0),
        # then up, x and y held, to the height the goal image shows (its latent energy as well)
        Waypoint("goal image 0", np.array([NAN, NAN, carry.goal_z]), 0.0, cfg.last_steps, 0.0,
                 image=cfg.align == "latent", hold_xy=True)]
    return [(w, 0) for w in phases]
