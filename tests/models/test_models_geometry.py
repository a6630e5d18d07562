"""Euler <-> matrix and pose propagation in torch agree with scipy (extrinsic "xyz")."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ami_robot.models import actions_between, euler_to_matrix, matrix_to_euler, next_state


def test_euler_to_matrix_matches_scipy() -> None:
    angles = np.random.default_rng(0).uniform(-np.pi, np.pi, (50, 3))
    angles[:, 1] /= 2  # b in [-pi/2, pi/2]
    ours = euler_to_matrix(torch.tensor(angles)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12)


def test_matrix_to_euler_matches_scipy() -> None:
    mats = Rotation.random(50, random_state=1).as_matrix()
    ours = matrix_to_euler(torch.tensor(mats)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_matrix(mats).as_euler("xyz"), atol=1e-9)


def test_gimbal_lock_round_trips() -> None:
    angles = torch.tensor([[0.3, np.pi / 2, 0.0], [-0.7, -np.pi / 2, 0.0]], dtype=torch.float64)
    back = euler_to_matrix(matrix_to_euler(euler_to_matrix(angles)))
    torch.testing.assert_close(back, euler_to_matrix(angles), atol=1e-7, rtol=0)


def test_next_state_and_actions_between_invert() -> None:
    rng = np.random.default_rng(2)
    state = torch.tensor(np.concatenate([rng.normal(size=(8, 3)), rng.uniform(-1, 1, (8, 3)),
                                         rng.uniform(0, 1, (8, 1))], 1))
    action = torch.tensor(np.concatenate([rng.normal(0, 0.05, (8, 3)), rng.uniform(-0.2, 0.2, (8, 3)),
                                          rng.uniform(-0.1, 0.1, (8, 1))], 1))
    new = next_state(state, action)
    rot = Rotation.from_euler("xyz", action[:, 3:6].numpy()) * Rotation.from_euler("xyz",
                                                                                  state[:, 3:6].numpy())
    np.testing.assert_allclose(new[:, 3:6].numpy(), rot.as_euler("xyz"), atol=1e-9)
    np.testing.assert_allclose(new[:, :3].numpy(), (state[:, :3] + action[:, :3]).numpy())
    assert torch.all((new[:, 6] >= 0) & (new[:, 6] <= 1))
    unclipped = (state[:, 6] + action[:, 6] >= 0) & (state[:, 6] + action[:, 6] <= 1)
    back = actions_between(torch.stack([state, new], 1))[:, 0]  # (8, 7)
    torch.testing.assert_close(back[unclipped], action[unclipped], atol=1e-9, rtol=0)


def test_gripper_clips() -> None:
    s = torch.tensor([[0.0, 0, 0, 0, 0, 0, 0.9]])
    assert next_state(s, torch.tensor([[0.0, 0, 0, 0, 0, 0, 0.5]]))[0, 6] == 1.0
    assert next_state(s, torch.tensor([[0.0, 0, 0, 0, 0, 0, -2.0]]))[0, 6] == 0.0
