"""Poses the V-JEPA 2-AC way, in torch and batched: Euler <-> matrix, state propagation.

A state is 7-D: end-effector xyz, extrinsic "xyz" Euler angles (rad), gripper in [0, 1]. An
action is 7-D: delta xyz, delta rotation R_{k+1} R_k^T as extrinsic "xyz" Euler, delta gripper.
Extrinsic xyz (scipy's `from_euler("xyz", ...)`): rotate about the fixed x, then y, then z axes,
so R = Rz(c) Ry(b) Rx(a).
"""

from __future__ import annotations

import torch


def euler_to_matrix(euler: torch.Tensor) -> torch.Tensor:
    """Extrinsic xyz Euler angles (..., 3) -> rotation matrices (..., 3, 3)."""
    a, b, c = euler.unbind(-1)
    ca, sa, cb, sb, cc, sc = a.cos(), a.sin(), b.cos(), b.sin(), c.cos(), c.sin()
    rows = [
        cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa,
        sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa,
        -sb, cb * sa, cb * ca,
    ]
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))  # (..., 3, 3)


def matrix_to_euler(m: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> extrinsic xyz Euler angles (..., 3), b in [-pi/2, pi/2].

    At gimbal lock (|b| = pi/2) only a -/+ c is determined; c is set to 0 there, as scipy does.
    """
    cos_b = torch.sqrt(m[..., 0, 0] ** 2 + m[..., 1, 0] ** 2)  # (...,)
    b = torch.atan2(-m[..., 2, 0], cos_b)
    regular = cos_b > eps
    a = torch.where(regular, torch.atan2(m[..., 2, 1], m[..., 2, 2]),
                    torch.atan2(-m[..., 1, 2], m[..., 1, 1]))
    c = torch.where(regular, torch.atan2(m[..., 1, 0], m[..., 0, 0]), torch.zeros_like(b))
    return torch.stack([a, b, c], dim=-1)  # (..., 3)


def next_state(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Propagate states (..., 7) by actions (..., 7): xyz + delta, R_delta R, gripper clipped to [0, 1]."""
    xyz = state[..., 0:3] + action[..., 0:3]
    rot = euler_to_matrix(action[..., 3:6]) @ euler_to_matrix(state[..., 3:6])  # (..., 3, 3)
    grip = (state[..., 6:7] + action[..., 6:7]).clamp(0.0, 1.0)
    return torch.cat([xyz, matrix_to_euler(rot), grip], dim=-1)  # (..., 7)


def actions_between(states: torch.Tensor) -> torch.Tensor:
    """The actions that take each state to the next: (..., T+1, 7) -> (..., T, 7)."""
    before, after = states[..., :-1, :], states[..., 1:, :]
    delta_rot = euler_to_matrix(after[..., 3:6]) @ euler_to_matrix(before[..., 3:6]).transpose(-1, -2)
    return torch.cat([after[..., 0:3] - before[..., 0:3], matrix_to_euler(delta_rot),
                      after[..., 6:7] - before[..., 6:7]], dim=-1)  # (..., T, 7)
