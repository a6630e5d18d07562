"""Where the object is, read from the frozen encoder's latents: the locator at run time.

The latent energy lines the hand up with a goal image, but Push and pick-and-place from the
final image alone need where the object is *now*, which no goal image shows. The memory's keys
find the arm, not the object, and a linear probe reads object x, y badly, so a small attentive
probe (ami_robot.models.locator) is trained on the training episodes' simulator positions
(ami_robot.train.locator) and read here from latents alone.

The held-out palette's colours were never seen: trained on the raw frames only, the probe's error
at the first frame of held-out PickPlace episodes is about twice its error on training colours
(median 1.5 vs 0.9 cm). So each image is also read through copies with the object repainted in
random colours (`repainted`), and the reading is the median over the image and its copies.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ami_robot.models.locator import TARGETS, LocatorConfig, LocatorNet, recolour
from ami_robot.policies.retrieval.fingerprint import probe_image, same_encoder
from ami_robot.weights import load_with_card, save_with_card
from ami_robot.world_model import WorldModel

FORMAT = "ami-robot/locator-v1"


def repainted(pixels: np.ndarray, copies: int) -> torch.Tensor:
    """uint8 images (B, H, W, 3) -> `copies` repainted copies of each (B*copies, H, W, 3), image-major,
    from a fixed seed: the same images always get the same copies."""
    images = torch.as_tensor(np.asarray(pixels))
    return recolour(images.repeat_interleave(copies, 0), torch.Generator().manual_seed(0))


class Locator:
    """A trained LocatorNet and its card: latents -> (object xyz, TCP xyz) in metres."""

    def __init__(self, net: LocatorNet, card: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.card = card or {}

    @torch.no_grad()
    def locate(self, z: torch.Tensor, z_copies: torch.Tensor | None = None) -> np.ndarray:
        """Latents of B images (B, N, D) -> (B, 6): object xyz and TCP xyz (m).

        With the latents of their repainted copies (B*K, N, D, as `repainted` orders them), each
        reading is the median over the image and its K copies, which steadies the read of colours
        unlike any seen in training.
        """
        b = len(z)
        views = z if z_copies is None else torch.cat([z, z_copies])  # (B*(1+K), N, D)
        out = self.net.metres(views)  # (B*(1+K), 6)
        if z_copies is not None:
            out = torch.cat([out[:b, None], out[b:].reshape(b, len(z_copies) // b, -1)], 1).median(1).values
        return out.cpu().numpy()

    def check(self, world_model: WorldModel) -> None:
        """Raise if `world_model`'s encoder is not the one the probe was trained on."""
        if not same_encoder(self.locate(world_model.encode(probe_image()))[0], self.net.fingerprint):
            raise ValueError("the locator was trained on a different encoder than this world model's; "
                             "retrain it with `ami-robot locator` for this model (or use the shipped model)")

    # ------------------------------------------------------------------ save, load

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """locator.safetensors and its JSON card (config, sha256, `meta`), each written atomically;
        the card is kept as `self.card`."""
        tensors = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        card = {"config": asdict(self.net.config), "targets": list(TARGETS), **(meta or {})}
        self.card = save_with_card(tensors, path, card, metadata={"format": FORMAT})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Locator:
        """Load locator.safetensors, its sha256 checked against the card beside it."""
        tensors, card = load_with_card(path, FORMAT, "locator", ("train it with `ami-robot locator` (or "
                                                                 "`ami-robot reproduce`)", "retrain it"))
        net = LocatorNet(LocatorConfig(**card["config"]))
        net.load_state_dict(tensors)
        return cls(net, card)
