"""A point that moves by the commanded delta xyz, drawn into one pixel, and a cost model of it.

Enough to test the agent's loop without a network or a simulator.
"""

from __future__ import annotations

import numpy as np
import torch

LOW, HIGH = np.array([0.2, -0.3, 0.0]), np.array([0.8, 0.3, 0.5])


def draw(pos: np.ndarray) -> np.ndarray:
    """A tiny uint8 (8, 8, 3) image whose pixel (0, 0) encodes the position (~2 mm steps)."""
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[0, 0] = np.round((pos - LOW) / (HIGH - LOW) * 255).astype(np.uint8)
    return pixels


def read(pixels: np.ndarray) -> np.ndarray:
    return LOW + pixels[0, 0].astype(np.float64) / 255 * (HIGH - LOW)


class PointEnv:
    """reset() -> obs; step(action) -> obs; obs = {pixels, state float32 (7,)}."""

    def __init__(self, start=(0.4, 0.0, 0.2)) -> None:
        self.start = np.asarray(start, dtype=np.float64)

    def reset(self) -> dict:
        self.pos = self.start.copy()
        self.gripper = 0.0
        return self._obs()

    def step(self, action: np.ndarray) -> dict:
        self.pos = np.clip(self.pos + action[:3], LOW, HIGH)
        self.gripper = float(np.clip(self.gripper + action[6], 0, 1))
        return self._obs()

    def _obs(self) -> dict:
        state = np.concatenate([self.pos, [0.0, 0.0, 0.0, self.gripper]]).astype(np.float32)
        return {"pixels": draw(self.pos), "state": state}


class PointModel:
    """CostModel: distance (m) from the point after all planned steps to the goal's point."""

    def __init__(self) -> None:
        self.encoded = 0  # how many goals were encoded

    def encode_goal(self, goal_pixels: np.ndarray) -> torch.Tensor:
        self.encoded += 1
        return torch.as_tensor(read(goal_pixels), dtype=torch.float32)

    def cost_fn(self, obs: dict, goal: torch.Tensor, horizon: int):
        pos = torch.as_tensor(obs["state"][:3])

        def cost(actions: torch.Tensor) -> torch.Tensor:
            assert actions.shape[1:] == (horizon, 7)
            return (pos + actions[:, :, :3].sum(dim=1) - goal).norm(dim=-1)

        return cost
