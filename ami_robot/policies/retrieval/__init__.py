"""The retrieval policy: an engineered baseline built on the world model (EVAL_PROTOCOL.md).

    memory       FrameMemory: keys and robot states of the training frames, read from latents
    locator      Locator: where the object is, read from latents by a probe trained on sim state
    phases       RetrievalConfig (every setting and number) and the waypoints, in order
    policy       RetrievalMPC: the phases, step by step, through the shared receding-horizon loop
    fingerprint  which encoder the memory and the locator were made with
"""

from ami_robot.policies.retrieval.fingerprint import probe_image
from ami_robot.policies.retrieval.locator import Locator, repainted
from ami_robot.policies.retrieval.memory import CLOSED, HELD_MAX, FrameMemory, Retrieval
from ami_robot.policies.retrieval.phases import Carry, RetrievalConfig, Waypoint, carry_phases, goal_phases
from ami_robot.policies.retrieval.policy import Episode, RetrievalMPC

__all__ = ["CLOSED", "HELD_MAX", "Carry", "Episode", "FrameMemory", "Locator", "Retrieval", "RetrievalConfig",
           "RetrievalMPC", "Waypoint", "carry_phases", "goal_phases", "probe_image", "repainted"]
