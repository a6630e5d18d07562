"""Action conventions of V-JEPA 2-AC, computed from robot states or composed from commanded actions.

A state is 7-D: end-effector xyz (m), extrinsic "xyz" Euler angles (rad), gripper in [0, 1].
An action is 7-D: delta xyz, delta rotation R_{k+1} R_k^T as extrinsic "xyz" Euler, delta gripper
(shared/VJEPA2_FACTS.md). Both functions take any leading batch shape.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ami_robot.planners import ACTION_DIM  # defined once, with the planners that search it

STATE_DIM = 7


def _check_last_dim(name: str, x: np.ndarray, dim: int) -> None:
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., T, {dim}), got {x.shape}")


def actions_from_states(states: np.ndarray) -> np.ndarray:
    """Actions that take each state to the next: (..., T+1, 7) -> (..., T, 7), float32.

    delta xyz = p_{k+1} - p_k; delta rotation = R_{k+1} R_k^T as extrinsic "xyz" Euler (so that
    R_{k+1} = R_delta R_k, the pose propagation the planner uses); delta gripper = g_{k+1} - g_k.
    """
    states = np.asarray(states, dtype=np.float64)
    _check_last_dim("states", states, STATE_DIM)
    if states.shape[-2] < 1:
        raise ValueError("states needs at least one time step")
    lead = states.shape[:-1]  # (..., T+1)
    out = np.empty((*lead[:-1], lead[-1] - 1, ACTION_DIM), dtype=np.float64)  # (..., T, 7)
    out[..., 0:3] = states[..., 1:, 0:3] - states[..., :-1, 0:3]
    out[..., 6] = states[..., 1:, 6] - states[..., :-1, 6]
    if out.shape[-2] > 0:
        rot_mats = Rotation.from_euler("xyz", states[..., 3:6].reshape(-1, 3)).as_matrix()
        rot_mats = rot_mats.reshape(*lead, 3, 3)  # (..., T+1, 3, 3)
        delta = rot_mats[..., 1:, :, :] @ np.swapaxes(rot_mats[..., :-1, :, :], -1, -2)  # R_{k+1} R_k^T
        out[..., 3:6] = Rotation.from_matrix(delta.reshape(-1, 3, 3)).as_euler("xyz").reshape(
            *out.shape[:-1], 3
        )
    return out.astype(np.float32)


def compose_actions(actions: np.ndarray, skip: int) -> np.ndarray:
    """Compose runs of `skip` consecutive commanded actions into one: (..., T*skip, 7) -> (..., T, 7).

    Translations and gripper deltas add up; rotation deltas compose as R_{skip-1} ... R_1 R_0 (each
    applied on the left of the pose, like the env applies them), returned as extrinsic "xyz" Euler.
    """
    actions = np.asarray(actions, dtype=np.float64)
    _check_last_dim("actions", actions, ACTION_DIM)
    if skip < 1:
        raise ValueError(f"skip must be >= 1, got {skip}")
    steps = actions.shape[-2]
    if steps % skip:
        raise ValueError(f"the number of actions ({steps}) is not a multiple of skip={skip}")
    if skip == 1:
        return actions.astype(np.float32)
    grouped = actions.reshape(*actions.shape[:-2], steps // skip, skip, ACTION_DIM)  # (..., T, s, 7)
    out = np.empty((*grouped.shape[:-2], ACTION_DIM), dtype=np.float64)  # (..., T, 7)
    out[..., 0:3] = grouped[..., 0:3].sum(axis=-2)
    out[..., 6] = grouped[..., 6].sum(axis=-1)
    if out.size:
        mats = Rotation.from_euler("xyz", grouped[..., 3:6].reshape(-1, 3)).as_matrix()
        mats = mats.reshape(*grouped.shape[:-1], 3, 3)  # (..., T, s, 3, 3)
        total = mats[..., 0, :, :]
        for j in range(1, skip):
            total = mats[..., j, :, :] @ total  # the later delta acts on the left
        out[..., 3:6] = Rotation.from_matrix(total.reshape(-1, 3, 3)).as_euler("xyz").reshape(
            *out.shape[:-1], 3
        )
    return out.astype(np.float32)


def apply_action(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Propagate a state by an action, the inverse of `actions_from_states`: (..., 7) -> (..., 7).

    xyz + delta, R_delta R, gripper + delta clipped to [0, 1] (the planner's pose propagation).
    """
    state = np.asarray(state, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    if state.shape[-1] != STATE_DIM or action.shape[-1] != ACTION_DIM:
        raise ValueError(f"expected (..., 7) state and action, got {state.shape} and {action.shape}")
    state, action = np.broadcast_arrays(state, action)
    out = np.empty(state.shape, dtype=np.float64)
    out[..., 0:3] = state[..., 0:3] + action[..., 0:3]
    rot = Rotation.from_euler("xyz", action[..., 3:6].reshape(-1, 3)) * Rotation.from_euler(
        "xyz", state[..., 3:6].reshape(-1, 3)
    )
    out[..., 3:6] = rot.as_euler("xyz").reshape(*state.shape[:-1], 3)
    out[..., 6] = np.clip(state[..., 6] + action[..., 6], 0.0, 1.0)
    return out.astype(np.float32)
