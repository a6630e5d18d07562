"""A user's own policy for the bench test: reset/act, nothing else."""

import numpy as np


class StandStill:
    def reset(self, obs, info) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        return np.zeros(7, np.float32)
