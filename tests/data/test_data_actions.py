"""The V-JEPA 2-AC action convention: actions from states are the true deltas."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ami_robot.data import actions_from_states, apply_action, compose_actions


def test_known_rotations_and_translations() -> None:
    # Start at some orientation, apply known deltas on the left: R_{k+1} = R_delta R_k.
    deltas = np.array([[0.1, 0.0, 0.0], [0.0, -0.2, 0.0], [0.0, 0.0, 0.3], [0.05, 0.1, -0.15]])
    rot = Rotation.from_euler("xyz", [0.3, -0.4, 2.0])
    states = [np.r_[0.4, 0.1, 0.2, rot.as_euler("xyz"), 0.0]]
    for k, d in enumerate(deltas):
        rot = Rotation.from_euler("xyz", d) * rot
        states.append(np.r_[states[-1][:3] + [0.01 * k, -0.02, 0.03], rot.as_euler("xyz"), 0.25 * (k + 1)])
    actions = actions_from_states(np.array(states))
    assert actions.shape == (4, 7) and actions.dtype == np.float32
    np.testing.assert_allclose(actions[:, 3:6], deltas, atol=1e-6)
    np.testing.assert_allclose(actions[:, 0:3], [[0.01 * k, -0.02, 0.03] for k in range(4)], atol=1e-6)
    np.testing.assert_allclose(actions[:, 6], 0.25, atol=1e-6)


def test_euler_wrap_gives_small_delta() -> None:
    # Roll crosses +pi -> -pi: the Euler angles jump by ~2 pi, the rotation by 0.1 rad.
    states = np.zeros((2, 7))
    states[0, 3], states[1, 3] = np.pi - 0.05, -np.pi + 0.05
    np.testing.assert_allclose(actions_from_states(states)[0, 3:6], [0.1, 0.0, 0.0], atol=1e-6)


def test_apply_action_inverts_actions_from_states(make_episode) -> None:
    ep = make_episode(3, steps=12)
    actions = actions_from_states(ep.states)
    np.testing.assert_allclose(actions, ep.actions, atol=1e-5)
    replay = apply_action(ep.states[:-1], actions)
    np.testing.assert_allclose(replay, ep.states[1:], atol=1e-5)


@pytest.mark.parametrize("skip", [1, 2, 3])
def test_composed_actions_equal_deltas_between_kept_states(make_episode, skip: int) -> None:
    ep = make_episode(5, steps=12)
    composed = compose_actions(ep.actions, skip)
    assert composed.shape == (12 // skip, 7)
    np.testing.assert_allclose(composed, actions_from_states(ep.states[::skip]), atol=1e-5)


def test_batched_shapes() -> None:
    states = np.random.default_rng(0).normal(size=(4, 3, 6, 7))
    assert actions_from_states(states).shape == (4, 3, 5, 7)
    assert compose_actions(np.zeros((2, 6, 7)), 3).shape == (2, 2, 7)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of skip"):
        compose_actions(np.zeros((5, 7)), 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 7\)"):
        actions_from_states(np.zeros((5, 6)))
