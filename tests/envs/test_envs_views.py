"""Camera views: the wrist and side views beside the exterior one, and what they show that it misses."""

import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ami_robot.envs import VIEWS, stack_views, view_key
from ami_robot.envs.experts import TaskScript

BOTH = ("exterior", "wrist")


def test_view_keys() -> None:
    # a world model over n views reads VIEWS[:n]: the two-view model exterior and wrist
    assert VIEWS[:2] == BOTH and VIEWS == (*BOTH, "side")
    assert [view_key(v) for v in VIEWS] == ["pixels", "wrist_pixels", "side_pixels"]
    assert view_key("wrist", "subgoal_") == "subgoal_wrist_pixels"
    with pytest.raises(ValueError, match="unknown view 'top'"):
        view_key("top")


@pytest.mark.parametrize("views", [("wrist",), ("exterior", "exterior"), (), ("exterior", "top")])
def test_bad_views_are_refused(make_env, views) -> None:
    with pytest.raises(ValueError, match="view"):
        make_env("Reach", views=views)


def test_two_view_observation_and_goals(make_env) -> None:
    env = make_env("PickPlace", views=BOTH)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert set(obs) == {"pixels", "wrist_pixels", "state", "goal_pixels", "goal_wrist_pixels"}
    assert all(obs[k].shape == (32, 32, 3) for k in obs if k != "state")
    assert np.array_equal(info["goal_wrist_pixels"], obs["goal_wrist_pixels"])
    assert len(info["subgoal_wrist_pixels"]) == len(info["subgoal_pixels"]) == 3
    assert not np.array_equal(obs["pixels"], obs["wrist_pixels"])
    stacked = stack_views(obs, BOTH)
    assert stacked.shape == (64, 32, 3)
    assert np.array_equal(stacked[32:], obs["wrist_pixels"])
    subgoals = stack_views(info, BOTH, "subgoal_")
    assert len(subgoals) == 3 and subgoals[0].shape == (64, 32, 3)


def test_exterior_frames_do_not_change_with_a_second_view(make_env) -> None:
    one = make_env("Grasp").reset(seed=5)[0]
    two = make_env("Grasp", views=BOTH).reset(seed=5)[0]
    assert np.array_equal(one["pixels"], two["pixels"])
    assert np.array_equal(one["goal_pixels"], two["goal_pixels"])


def test_wrist_view_shows_the_fingers_close(make_env) -> None:
    """DESIGN.md lesson 1: closing on a cube changes ~1% of the exterior view's 64 px frame; the wrist
    camera is placed so that the same step changes many times more of its own."""
    env = make_env("Grasp", views=BOTH, image_size=64).unwrapped
    changed = {"exterior": [], "wrist": []}
    for seed in (20003, 20004):
        env.reset(seed=seed)
        script, states = TaskScript("Grasp", env.sim, env.goal), []
        while not script.done:
            env.sim.apply_action(script.act())
            env.sim.simulate()
            states.append(env.sim.get_state())
        close = next(i for i, s in enumerate(states) if s[-1] > 0.5)  # the gripper command goes to 1
        for view in changed:
            env.set_sim_state(states[close - 1])
            before = env.render_frame(view).astype(int)
            env.set_sim_state(states[close + 1])
            after = env.render_frame(view).astype(int)
            changed[view].append(float((np.abs(before - after).max(-1) > 20).mean()))
    assert max(changed["exterior"]) < 0.05
    assert min(changed["wrist"]) > 0.08 and min(changed["wrist"]) > 4 * max(changed["exterior"])


@pytest.mark.parametrize(("task", "names"), [
    ("Grasp", ["above_object", "around", "closed"]),
    ("Push", ["above_behind", "behind", "at_goal"]),
    ("PickPlace", ["grasped", "above_target", "placed"]),
])
def test_default_subgoals_follow_the_expert(make_env, task, names) -> None:
    env = make_env(task)
    _, info = env.reset(seed=20001)
    assert env.unwrapped.subgoal_names == tuple(names)
    steps = info["subgoal_steps"]
    assert len(info["subgoal_pixels"]) == len(names) and steps == sorted(steps)
    assert steps[-1] <= info["expert_steps"]


def test_grasp_subgoal_states_open_then_close(make_env) -> None:
    _, info = make_env("Grasp").reset(seed=20002)
    above, around, closed = info["subgoal_states"]
    assert above[6] < 0.05 and around[6] < 0.05  # open
    assert closed[6] > 0.3  # the pads on the cube: closed as far as it lets them
    assert above[2] - around[2] > 0.05  # over the object, then down to it


def test_finer_pickplace_subgoals_and_bad_names(make_env) -> None:
    finer = ("around", "closed", "grasped", "above_target", "released", "placed")
    env = make_env("PickPlace", subgoals=finer)
    _, info = env.reset(seed=20003)
    assert len(info["subgoal_pixels"]) == 6
    with pytest.raises(ValueError, match="sub-goals must be distinct names among"):
        make_env("Grasp", subgoals=("placed",))


def test_pickplace_lowered_is_set_down_still_held(make_env) -> None:
    names = ("above_target", "lowered", "released")
    _, info = make_env("PickPlace", subgoals=names).reset(seed=20005)
    above, lowered, released = info["subgoal_states"]
    assert above[2] - lowered[2] > 0.05  # carried high, then set down
    assert lowered[6] > 0.3 and released[6] < 0.05  # still closed on it, then open


@pytest.mark.parametrize("task", ["Grasp", "Push", "PickPlace"])
def test_all_subgoals_are_every_event_the_expert_marks(make_env, task) -> None:
    env = make_env(task, subgoals="all")
    _, info = env.reset(seed=20004)
    events = type(env.unwrapped).subgoal_events
    assert env.unwrapped.subgoal_names == events
    assert len(info["subgoal_pixels"]) == len(info["subgoal_steps"]) == len(events)
    assert info["subgoal_steps"] == sorted(info["subgoal_steps"])
    with pytest.raises(ValueError, match="'all' or a list of names"):
        make_env(task, subgoals="every")


def test_side_view_sees_the_push_the_exterior_view_hides(make_env) -> None:
    """Development seed 20005: at the expert's `at_goal` moment the hand stands between the exterior
    camera and the cube; the side camera, looking across that line, shows most of it (object pixels
    by segmentation at 64 px, as benchmarks/bench_occlusion.py counts them by colour)."""
    env = make_env("Push", views=(*BOTH, "side"), image_size=64).unwrapped
    obs, _ = env.reset(seed=20005)
    assert obs["side_pixels"].shape == (64, 64, 3) and obs["side_pixels"].std() > 0
    seg = mujoco.Renderer(env.model, 64, 64)
    seg.enable_segmentation_rendering()
    objects = [env._appearance.box, env._appearance.cylinder]

    def object_pixels() -> dict[str, int]:
        counts = {}
        for view in ("exterior", "side"):
            seg.update_scene(env.sim.data, camera=view)
            counts[view] = int(np.isin(seg.render()[..., 0], objects).sum())
        return counts

    try:
        start = object_pixels()
        script = TaskScript("Push", env.sim, env.goal)
        while True:
            action = script.act()
            if "at_goal" in script.events:  # before the lifting action, as reset renders it
                break
            env.sim.apply_action(action)
            env.sim.simulate()
        at_goal = object_pixels()
    finally:
        seg.close()
    assert min(start.values()) >= 20  # both see the whole cube at the start
    assert at_goal["exterior"] < 0.25 * start["exterior"]
    assert at_goal["side"] > 0.5 * start["exterior"]
