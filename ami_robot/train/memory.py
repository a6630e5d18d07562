"""Building the retrieval policy's memory of training frames (ami_robot.policies.retrieval.memory)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ami_robot.data import load_trajectories
from ami_robot.policies.retrieval.memory import FrameMemory
from ami_robot.world_model import WorldModel


def build_memory(world_model: WorldModel, data_dir: str | Path, out: str | Path,
                 meta: dict[str, Any] | None = None) -> FrameMemory:
    """Encode every frame under `data_dir` (shards from `ami-robot collect`); write `out` and its card."""
    started = time.time()
    data = load_trajectories(data_dir, strict=True)
    memory = FrameMemory.build(world_model, data)
    recipe = {"data_dir": str(data_dir), "episodes": int(data.num_episodes),
              "build_seconds": round(time.time() - started, 1), **(meta or {})}
    memory.save(out, meta=recipe)
    memory.meta = recipe
    return memory
