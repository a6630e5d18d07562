"""`ArmEnv`: the Gymnasium environment every task shares (spaces, step, reset, render).

A task subclass (envs/tasks.py) says how to sample a goal and how to score the simulation;
this base class realises the goal with the task's scripted expert in a copy of the simulation,
renders the goal frame(s), validates actions and renders observations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from ami_robot.envs.experts import Goal, TaskScript
from ami_robot.envs.randomization import (
    AppearanceWriter,
    EpisodeSample,
    RandomizationConfig,
    as_palette,
    object_quat,
    sample_episode,
)
from ami_robot.envs.sim import DOWN, ArmSim, load_model
from ami_robot.envs.specs import ACTION_HIGH, ACTION_LOW, TASK_SPECS, TaskSpec

GOAL_TRIES = 5  # goal samples tried before keeping the last realised state anyway
STATE_LOW = (-1.0, -1.0, -0.5, -np.pi, -np.pi / 2, -np.pi, 0.0)
STATE_HIGH = (1.0, 1.0, 1.5, np.pi, np.pi / 2, np.pi, 1.0)
# Cameras an observation can show (assets: scene.xml's exterior and side, panda.xml's wrist). The exterior
# view is `pixels` / `goal_pixels` / `subgoal_pixels`; any other view v adds `v_pixels`,
# `goal_v_pixels` and `subgoal_v_pixels` beside them.
VIEWS = ("exterior", "wrist", "side")


def view_key(view: str, prefix: str = "") -> str:
    """The observation (prefix "") or goal ("goal_", "subgoal_") key of a camera view's frames."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {VIEWS}")
    return f"{prefix}pixels" if view == "exterior" else f"{prefix}{view}_pixels"


def stack_views(frames: dict[str, Any], views: Sequence[str], prefix: str = "") -> Any:
    """The views' frames of an observation or reset info, stacked top to bottom: (..., V*S, S, 3).

    One (V*S, S, 3) image per time step is how datasets store several views and how a world model
    over several views reads them (it cuts the image back into its V squares); values may also be
    lists of frames (sub-goals), stacked item by item.
    """
    parts = [frames[view_key(view, prefix)] for view in views]
    if isinstance(parts[0], list):
        return [np.concatenate(items, axis=-3) for items in zip(*parts, strict=True)]
    return np.concatenate(parts, axis=-3)
_RENDERING_PID: list[int] = []  # the process that first created an OpenGL context


def _use_egl_if_headless() -> None:
    """mujoco picks its OpenGL backend when it is imported. If that happened before this package
    could set MUJOCO_GL=egl (mujoco imported first, MUJOCO_GL unset) and there is no X display,
    point mujoco's renderer at EGL instead of failing."""
    try:
        from mujoco.rendering.classic import gl_context  # mujoco >= 3.3
    except ImportError:
        try:
            from mujoco import gl_context  # older layout
        except ImportError:
            return
    if getattr(gl_context, "_MUJOCO_GL", None) == "" and not os.environ.get("DISPLAY"):
        from mujoco.egl import GLContext

        gl_context.GLContext = GLContext


def _new_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    """A renderer, refusing (instead of hanging) in a child forked after its parent rendered."""
    if not _RENDERING_PID:
        _use_egl_if_headless()
    if _RENDERING_PID and _RENDERING_PID[0] != os.getpid():
        raise RuntimeError(
            "this process was forked after its parent created an OpenGL (EGL) context, which deadlocks; "
            "create vector environments before rendering in the parent, or use a 'spawn' / 'forkserver' "
            "context, e.g. gymnasium.make_vec(..., vectorization_mode='async', "
            "vector_kwargs={'context': 'forkserver'})"
        )
    _RENDERING_PID[:] = [os.getpid()]
    return mujoco.Renderer(model, size, size)


class ArmEnv(gym.Env):
    """Base class of the tabletop tasks; see envs/tasks.py for the documented environments.

    Besides the Gymnasium API it exposes, for planners that use the true simulator as a model
    (all privileged, never for the agent):
    - `get_sim_state() -> float64[n]`: physics (mj_getState, mjSTATE_INTEGRATION) + TCP target
      position and quaternion + gripper command; `set_sim_state(state)` restores it exactly
      (same episode: the object's shape, size and colour live in the model, not in the state).
    - `simulate(action)`: one control step (0.25 s) with the action clipped to the Box, no
      rendering, no validation, no `action_clipped` report; `render_frame()` renders the current
      state at image_size.
    - `task_state() -> float64[7]`: TCP xyz, gripper closure, object xyz; `goal_task_state` (also
      `info["goal_task_state"]` at reset) is the same at the realised goal; `goal` (a `Goal`) and
      `episode` (the `EpisodeSample`) describe the episode.

    Rendering is headless through EGL (MUJOCO_GL defaults to egl when this package is imported
    first; if mujoco was imported first without MUJOCO_GL and there is no display, EGL is used
    anyway). A process forked after its parent rendered cannot render (EGL deadlocks there):
    `gymnasium.make_vec(..., vectorization_mode="async")` works when created before any
    rendering in the parent, or anytime with `vector_kwargs={"context": "forkserver"}`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    task_name = ""  # the TASK_SPECS key, set by each task
    subgoal_events: tuple[str, ...] = ()  # the moments the task's script marks, in the order it reaches them
    subgoal_names: tuple[str, ...] = ()  # those rendered as sub-goal frames by default

    def __init__(
        self,
        render_mode: str | None = None,
        image_size: int = 128,
        render_size: int | None = None,
        object_kind: str = "cube",
        object_size_range: tuple[float, float] = (0.04, 0.05),
        palette: str | Sequence[Sequence[float]] = "train",
        start_region: tuple[tuple[float, float], tuple[float, float]] | None = None,
        goal_region: tuple[tuple[float, float], tuple[float, float]] | None = None,
        camera_pos_jitter: float = 0.0,
        camera_rot_jitter: float = 0.0,
        light_jitter: float = 0.0,
        views: Sequence[str] = ("exterior",),
        subgoals: Sequence[str] | str | None = None,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not 16 <= image_size <= 512 or (render_size is not None and not 16 <= render_size <= 512):
            raise ValueError("image_size and render_size must be in [16, 512] px")
        views = tuple(views)
        if not views or views[0] != "exterior" or len(set(views)) != len(views):
            raise ValueError(f"views must start with 'exterior' and not repeat, e.g. ('exterior', 'wrist'); "
                             f"got {views}")
        for view in views:
            view_key(view)  # names the unknown one
        self.views = views
        if subgoals == "all":
            subgoals = self.subgoal_events
        if subgoals is not None:
            if isinstance(subgoals, str):
                raise ValueError(f"subgoals must be 'all' or a list of names among {self.subgoal_events}; "
                                 f"got {subgoals!r}")
            subgoals = tuple(subgoals)
            unknown = [name for name in subgoals if name not in self.subgoal_events]
            if unknown or len(set(subgoals)) != len(subgoals):
                raise ValueError(f"{self.task_name} sub-goals must be distinct names among "
                                 f"{self.subgoal_events}; got {list(subgoals)}")
            self.subgoal_names = subgoals
        regions = {"start_region": start_region, "goal_region": goal_region}
        self.randomization = RandomizationConfig(
            object_kind=object_kind,
            object_size_range=tuple(object_size_range),
            palette=as_palette(palette),
            camera_pos_jitter=camera_pos_jitter,
            camera_rot_jitter=camera_rot_jitter,
            light_jitter=light_jitter,
            **{name: region for name, region in regions.items() if region is not None},
        )
        self.task_spec: TaskSpec = TASK_SPECS[self.task_name]
        self.render_mode = render_mode
        self.image_size = image_size
        self.render_size = render_size or image_size

        self.model = load_model()
        self.sim = ArmSim(self.model)
        self._goal_sim = ArmSim(self.model, self.sim.config)  # scratch copy where goals are realised
        self._appearance = AppearanceWriter(self.model)
        self._cameras = {view: self.model.camera(view).id for view in views}
        self._camera = self._cameras["exterior"]
        self._renderer: mujoco.Renderer | None = None
        self._big_renderer: mujoco.Renderer | None = None

        self.action_space = spaces.Box(np.array(ACTION_LOW, np.float32), np.array(ACTION_HIGH, np.float32))
        image = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.observation_space = spaces.Dict({
            **{view_key(view): image for view in views},
            # TCP xyz within the arm's reach (m), extrinsic xyz Euler (rad), gripper closure
            "state": spaces.Box(np.array(STATE_LOW, np.float32), np.array(STATE_HIGH, np.float32)),
            **{view_key(view, "goal_"): image for view in views},
        })
        self.episode: EpisodeSample | None = None
        self.goal: Goal | None = None
        self.goal_task_state = np.zeros(7)
        self.goal_state = np.zeros(7, np.float32)
        blank = np.zeros((image_size, image_size, 3), np.uint8)
        self._goal_pixels = {view: blank for view in views}
        self._pixels = {view: blank for view in views}
        self._goal_display: dict[str, Any] = {}  # render_views' goal and sub-goal frames, from reset

    # ------------------------------------------------------------------ task hooks
    def _sample_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> Goal:
        raise NotImplementedError

    def _realised_goal(self, sim: ArmSim, goal: Goal, force: bool = False) -> Goal | None:
        """The goal as the script left `sim`; None when it was not realised (unless `force`)."""
        raise NotImplementedError

    def _evaluate(self, sim: ArmSim) -> dict[str, Any]:
        """success (bool), distance (m) and any task-specific readings."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Gymnasium API
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.goal is None:
            raise RuntimeError("call reset() before step()")
        action, outside = self._check_action(action)
        limited = self.sim.apply_action(action)
        self.sim.simulate()
        obs = self._get_obs()
        info = self._get_info()
        info["action_clipped"] = outside or limited
        return obs, -float(info["distance"]), False, False, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        ep = self.episode = sample_episode(rng, self.randomization)
        self._appearance.apply(ep, self.sim.data)
        qpos = self.sim.solve_ik(ep.tcp_start, DOWN.as_quat(scalar_first=True))
        obj_pos = np.array([*ep.object_xy, ep.half_height])
        self.sim.reset(qpos, obj_pos, object_quat(ep.object_yaw))
        # let the object settle on the table before anything looks at it
        self.sim.simulate()

        goal_info = self._realise_goal(rng, ep)
        obs = self._get_obs()
        info = self._get_info()
        info.update(goal_info)
        info["task"] = self.task_name
        return obs, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self.render_size == self.image_size:
            return self._pixels["exterior"].copy()
        return self._render_big(self.sim, self._camera)

    def render_views(self) -> dict[str, Any]:
        """For people (videos, reports): every observed camera at render_size, keyed as observations
        and reset info are: the current frames (`pixels`, `wrist_pixels`, ...), the goal's
        (`goal_pixels`, ...) and the sub-goals' (`subgoal_pixels`, ... lists), the last two rendered
        at reset. Observations, and so the model's input, stay at image_size."""
        if self.render_mode != "rgb_array":
            raise RuntimeError('render_views() needs render_mode="rgb_array", e.g. '
                               'gymnasium.make(env_id, render_mode="rgb_array", render_size=256)')
        now = self._pixels if self.render_size == self.image_size else self._display_views(self.sim)
        return {**{view_key(view): frame.copy() for view, frame in now.items()}, **self._goal_display}

    def close(self) -> None:
        for renderer in (self._renderer, self._big_renderer):
            if renderer is not None:
                renderer.close()
        self._renderer = self._big_renderer = None

    def _get_obs(self) -> dict[str, np.ndarray]:
        self._pixels = self._render_views(self.sim)
        obs = {view_key(view): frame for view, frame in self._pixels.items()}
        obs["state"] = self.sim.robot_state()
        obs.update({view_key(view, "goal_"): frame.copy() for view, frame in self._goal_pixels.items()})
        return obs

    # ------------------------------------------------------------------ planner API
    def get_sim_state(self) -> np.ndarray:
        """Full snapshot: physics (mj_getState, mjSTATE_INTEGRATION) + TCP target + gripper command.

        Valid within the current episode (the object's shape, size and colour are not in it).
        """
        return self.sim.get_state()

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore a `get_sim_state()` snapshot of the current episode."""
        self.sim.set_state(state)

    def simulate(self, action: np.ndarray) -> None:
        """Advance one control step (0.25 s) with `action` clipped to the action space; no rendering."""
        self.sim.apply_action(np.clip(np.asarray(action, np.float64), ACTION_LOW, ACTION_HIGH))
        self.sim.simulate()

    def task_state(self) -> np.ndarray:
        """Privileged float64[7]: TCP xyz, gripper state (0 open .. 1 closed), object xyz."""
        return self.sim.task_state()

    def render_frame(self, view: str = "exterior") -> np.ndarray:
        """A camera's current frame at image_size (e.g. after `set_sim_state`); any of VIEWS."""
        view_key(view)
        return self._render(self.sim, self.model.camera(view).id)

    # ------------------------------------------------------------------ internals
    def _render(self, sim: ArmSim, camera: int | None = None) -> np.ndarray:
        if self._renderer is None:
            self._renderer = _new_renderer(self.model, self.image_size)
        self._renderer.update_scene(sim.data, camera=self._camera if camera is None else camera)
        return self._renderer.render()

    def _render_views(self, sim: ArmSim) -> dict[str, np.ndarray]:
        return {view: self._render(sim, camera) for view, camera in self._cameras.items()}

    def _render_big(self, sim: ArmSim, camera: int) -> np.ndarray:
        if self._big_renderer is None:
            self._big_renderer = _new_renderer(self.model, self.render_size)
        self._big_renderer.update_scene(sim.data, camera=camera)
        return self._big_renderer.render()

    def _display_views(self, sim: ArmSim) -> dict[str, np.ndarray] | None:
        """Every observed camera at render_size (render_views); None unless render_mode is set."""
        if self.render_mode != "rgb_array":
            return None
        if self.render_size == self.image_size:
            return self._render_views(sim)
        return {view: self._render_big(sim, camera) for view, camera in self._cameras.items()}

    def _check_action(self, action: Any) -> tuple[np.ndarray, bool]:
        array = np.asarray(action)
        if array.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"action must be a float array, got dtype {array.dtype}")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f"action has NaN or inf at indices {bad.tolist()}: {array[bad].tolist()}")
        array = array.astype(np.float64)
        # flag against the float32 Box the agent sees: float32(0.1) > 0.1 is inside it, not clipped
        outside = bool(np.any(array < self.action_space.low) or np.any(array > self.action_space.high))
        return np.clip(array, ACTION_LOW, ACTION_HIGH), outside

    def _get_info(self) -> dict[str, Any]:
        info = self._evaluate(self.sim)
        info.update(
            tcp_pos=self.sim.tcp_pos(),
            object_pos=self.sim.object_pos(),
            gripper=self.sim.gripper_state(),
            task_state=self.sim.task_state(),
        )
        return info

    def _realise_goal(self, rng: np.random.Generator, ep: EpisodeSample) -> dict[str, Any]:
        """Run the task's script in a copy of the simulation until it realises a sampled goal."""
        for attempt in range(1, GOAL_TRIES + 1):
            goal = self._sample_goal(rng, ep)
            sim = self._goal_sim
            sim.copy_from(self.sim)
            script = TaskScript(self.task_name, sim, goal)
            frames: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
            applied = 0
            while applied < self.task_spec.budget:
                action = script.act()
                for name in script.events:
                    if name in self.subgoal_names and name not in frames:
                        frames[name] = (self._render_views(sim), sim.robot_state(), self._display_views(sim))
                if script.done:
                    break
                sim.apply_action(action)
                sim.simulate()
                applied += 1
            realised = self._realised_goal(sim, goal) if script.done else None
            if realised is not None or attempt == GOAL_TRIES:
                break
        self.goal = realised or self._realised_goal(sim, goal, force=True)
        self._goal_pixels = self._render_views(sim)
        display = self._display_views(sim)
        self._goal_display = {} if display is None else {
            view_key(view, "goal_"): frame for view, frame in display.items()}
        self.goal_state = sim.robot_state()
        self.goal_task_state = sim.task_state()
        info: dict[str, Any] = {
            **{view_key(view, "goal_"): frame.copy() for view, frame in self._goal_pixels.items()},
            "goal_state": self.goal_state.copy(),
            "goal_task_state": self.goal_task_state.copy(),
            "goal_realised": realised is not None,
            "goal_attempts": attempt,
            "expert_steps": applied,
            "object_kind": ep.kind,
            "object_size": ep.size,
            "object_color": ep.color,
        }
        if self.subgoal_names:
            names = [name for name in self.subgoal_names if name in frames]
            for view in self.views:
                info[view_key(view, "subgoal_")] = [frames[name][0][view] for name in names]
            info["subgoal_states"] = [frames[name][1] for name in names]
            info["subgoal_steps"] = [script.events[name] for name in names]
            if display is not None:
                for view in self.views:
                    self._goal_display[view_key(view, "subgoal_")] = [frames[name][2][view] for name in names]
        return info
