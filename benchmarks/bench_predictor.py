"""Does the predictor beat "nothing moves"? Latent L1 per horizon against copy-last, per view.

    python benchmarks/bench_predictor.py --data runs/reproduce/data/val
    python benchmarks/bench_predictor.py --checkpoint runs/views2/model --data runs/views2/data/val

Open loop from one real frame: the predictor is given the true actions and states of a held-out
clip and feeds its own predictions back, as planning does; copy-last repeats the first frame's
latent. Both are compared with the encoded real frames. The predictor's robot states after the
first are its own (propagated from the actions), as in planning. With several views the same figures are
printed for each view's tokens alone (a model can win on the exterior view and lose on the wrist).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.data import load_trajectories
from ami_robot.envs import VIEWS
from ami_robot.train.train_predictor import _clip_batch, clip_starts, latents_for
from ami_robot.world_model import WorldModel


@torch.no_grad()
def open_loop_errors(wm: WorldModel, z: torch.Tensor, actions: torch.Tensor,
                     states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z (B, H+1, N, D) real latents, actions (B, H, 7), states (B, H+1, 7) -> L1 per horizon and
    token (H, N) of the open-loop prediction and of copy-last."""
    pred = wm.rollout(z[:, :1], states[:, :1], actions)  # (B, H, N, D)
    model = (pred - z[:, 1:]).abs().mean(dim=(0, 3))  # (H, N)
    copy = (z[:, :1] - z[:, 1:]).abs().mean(dim=(0, 3))  # (H, N)
    return model, copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="encoder and predictor folder (default: shipped)")
    parser.add_argument("--data", required=True, help="held-out episodes (e.g. a reproduce run's data/val)")
    parser.add_argument("--horizons", type=int, default=8)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--cache", default=None, help="where to keep the data's latents (default: none)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    wm = WorldModel.from_checkpoint(args.checkpoint or shipped_checkpoint_dir())
    data = load_trajectories(args.data)
    if data.views != wm.views:
        raise SystemExit(f"{args.data} holds {data.views} view(s) a frame; the model reads {wm.views}")
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(args.cache) if args.cache else Path(scratch) / "latents.pt"
        latents = latents_for(data, wm.encoder.eval(), cache, progress=True)  # (F, N, D) float16
    starts = clip_starts(data, args.horizons, np.arange(data.num_episodes))
    starts = np.random.default_rng(0).choice(starts, size=min(args.clips, len(starts)), replace=False)
    z, actions, states = _clip_batch(data, latents, starts, args.horizons, 1, torch.device("cpu"))
    model, copy = open_loop_errors(wm, z, actions, states)
    per_view = model.shape[1] // wm.views
    columns = [("all", slice(None))] + ([(VIEWS[v], slice(v * per_view, (v + 1) * per_view))
                                         for v in range(wm.views)] if wm.views > 1 else [])
    print(f"{len(starts)} clips of {data.num_episodes} held-out episodes; L1 model / copy-last (ratio)")
    print("| horizon | " + " | ".join(name for name, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for h in range(args.horizons):
        pairs = [(float(model[h, cut].mean()), float(copy[h, cut].mean())) for _, cut in columns]
        cells = [f"{m:.3f} / {c:.3f} ({m / c:.2f})" for m, c in pairs]
        print(f"| {h + 1} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
