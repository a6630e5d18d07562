"""Which encoder an artefact was made with: its reading of one fixed image, stored beside it.

The memory's keys and the locator's readings mean something only for the encoder that made
them. Each stores what it reads from `probe_image()` through that encoder, and on loading
compares it with what it reads through the world model it is given.
"""

from __future__ import annotations

import numpy as np
import torch


def probe_image(size: int = 64) -> np.ndarray:
    """A fixed colour ramp, uint8 (1, size, size, 3)."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    across, down = np.meshgrid(ramp, ramp)
    image = np.stack([across, down, 255 - across], axis=-1)
    return image.astype(np.uint8)[None]


def same_encoder(found: torch.Tensor, stored: torch.Tensor, tolerance: float = 1e-3) -> bool:
    """Whether a reading of the probe image matches the stored one (so the encoders are the same)."""
    found, stored = torch.as_tensor(found).float(), torch.as_tensor(stored).float()
    return found.shape == stored.shape and float((found - stored).abs().max()) <= tolerance
