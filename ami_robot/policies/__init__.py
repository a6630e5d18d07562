"""The policies `eval` and `bench` run side by side, all behind one small interface.

    reset(obs, info)   start an episode; info is the env's reset info (goal images, sub-goals, ...)
    act(obs) -> action float32 (7,)

A policy that plans several episodes in one batch also offers `reset_batch(obs, infos, seeds)` and
`act_batch(obs) -> (E, 7)`; the episode runner uses those when present. A privileged policy takes
the environment as its `env` argument. A user's own policy needs only reset/act. One whose
arguments name a file may offer `check_args(**kwargs)`, which eval and bench call before making
any env: a ValueError there starts with the argument's name, and the app prefixes its config key.

    latent      LatentMPC: V-JEPA 2-AC planning, pure latent (`policy=latent_mpc`)
    retrieval/  RetrievalMPC: the engineered baseline (`policy=retrieval`): phases from a memory of
                training frames and a locator trained on simulator state
    baselines   RandomPolicy, ExpertPolicy, SimMPC, SimLatentMPC: the reference rows
    sb3         SB3Policy: a Stable-Baselines3 model.zip trained on the goal observation (`rl` extra)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ami_robot.policies.baselines import SIM_TASK_COSTS, ExpertPolicy, RandomPolicy, SimLatentMPC, SimMPC
from ami_robot.policies.latent import GOAL_MODES, LatentMPC, goal_images, goal_schedule
from ami_robot.policies.retrieval import RetrievalConfig, RetrievalMPC
from ami_robot.policies.sb3 import SB3Policy


@runtime_checkable
class Policy(Protocol):
    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


__all__ = ["GOAL_MODES", "SIM_TASK_COSTS", "ExpertPolicy", "LatentMPC", "Policy", "RandomPolicy",
           "RetrievalConfig", "RetrievalMPC", "SB3Policy", "SimLatentMPC", "SimMPC", "goal_images",
           "goal_schedule"]
