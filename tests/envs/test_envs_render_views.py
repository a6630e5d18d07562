"""render_views: every observed camera, the goal and the sub-goals at render_size for people, while the
observations (the model's input) stay at image_size and are the same as without it."""

import numpy as np
import pytest


def _shrink(frame: np.ndarray, size: int) -> np.ndarray:
    """Block-average a (k*size, k*size, 3) frame to (size, size, 3)."""
    k = frame.shape[0] // size
    return frame.reshape(size, k, size, k, 3).mean(axis=(1, 3))


def test_render_views_at_render_size_match_the_observed_frames(make_env) -> None:
    env = make_env("PickPlace", image_size=32, render_mode="rgb_array", render_size=64,
                   views=("exterior", "wrist"))
    obs, info = env.reset(seed=3)
    shown = env.unwrapped.render_views()
    assert sorted(shown) == ["goal_pixels", "goal_wrist_pixels", "pixels", "subgoal_pixels",
                             "subgoal_wrist_pixels", "wrist_pixels"]
    for key in ("pixels", "wrist_pixels", "goal_pixels", "goal_wrist_pixels"):
        assert shown[key].shape == (64, 64, 3) and shown[key].dtype == np.uint8
        assert obs[key].shape == (32, 32, 3)
    # each is the same moment as its observed frame (the start and the goal differ by ~40 levels)
    assert np.abs(_shrink(shown["pixels"], 32) - obs["pixels"]).mean() < 10
    assert np.abs(_shrink(shown["goal_pixels"], 32) - obs["goal_pixels"]).mean() < 10
    assert np.abs(_shrink(shown["goal_pixels"], 32) - obs["pixels"]).mean() > 20
    assert len(shown["subgoal_pixels"]) == len(info["subgoal_pixels"]) == 3
    for big, small in zip(shown["subgoal_pixels"], info["subgoal_pixels"], strict=True):
        assert np.abs(_shrink(big, 32) - small).mean() < 10
    obs, *_ = env.step(np.array([0.05, 0, 0, 0, 0, 0, 0], np.float32))
    after = env.unwrapped.render_views()
    assert np.abs(_shrink(after["pixels"], 32) - obs["pixels"]).mean() < 10
    assert after["goal_pixels"] is shown["goal_pixels"]  # rendered once, at reset


def test_observations_do_not_change_with_render_views(make_env) -> None:
    plain = make_env("Reach", image_size=32)
    shown = make_env("Reach", image_size=32, render_mode="rgb_array", render_size=64)
    a, _ = plain.reset(seed=5)
    b, _ = shown.reset(seed=5)
    action = np.array([0.03, -0.02, 0.01, 0, 0, 0, 0], np.float32)
    a, *_ = plain.step(action)
    shown.unwrapped.render_views()
    b, *_ = shown.step(action)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_render_views_needs_render_mode(make_env) -> None:
    env = make_env("Reach", image_size=32)
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match='render_mode="rgb_array"'):
        env.unwrapped.render_views()
