"""The encoder's linear probe at several poolings of its token grid, trained encoder vs its random twin.

    python benchmarks/bench_probe_pooling.py --train runs/reproduce/data/train --val runs/reproduce/data/val

`ami-robot reproduce` probes 4 x 4 pooled features (the model card's figure); the full grid keeps
where things are at patch resolution but gives the ridge 4x the inputs for the same frames. Both
encoders get the same probe, frames and ridge strengths. Slow at the full grid: ~10 min on 2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.data import load_trajectories
from ami_robot.models import VisionTransformer
from ami_robot.train.ac import encode_frames
from ami_robot.train.pipeline import PROBE_TARGETS, _probe_targets
from ami_robot.train.probe import pool_features, ridge_probe
from ami_robot.weights import load_ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--pooled", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--fit-frames", type=int, default=8000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    encoder, _ = load_ours(shipped_checkpoint_dir() / "encoder.safetensors", "encoder")
    torch.manual_seed(0)  # the twin reproduce measures (same seed as the pretraining config's default)
    twin = VisionTransformer(encoder.config)
    train, val = load_trajectories(args.train), load_trajectories(args.val)
    rng = np.random.default_rng(0)
    fit = np.sort(rng.choice(train.num_frames, min(args.fit_frames, train.num_frames), replace=False))
    owner = torch.from_numpy(np.repeat(np.arange(train.num_episodes), train.lengths)[fit])
    y_fit, y_val = _probe_targets(train, fit), _probe_targets(val, np.arange(val.num_frames))
    grid = (encoder.config.grid,) * 2
    print("| encoder | pooled | R^2 mean | " + " | ".join(PROBE_TARGETS) + " |")
    print("|---|---|---|" + "---|" * len(PROBE_TARGETS))
    for name, model in (("trained", encoder), ("random twin", twin)):
        z_fit = encode_frames(model, torch.from_numpy(train.frames[fit])).float()
        z_val = encode_frames(model, torch.from_numpy(val.frames)).float()
        for pooled in args.pooled:
            x_fit, x_val = pool_features(z_fit, grid, pooled), pool_features(z_val, grid, pooled)
            result = ridge_probe(x_fit, y_fit, x_val, y_val, lambdas=(1e-1, 1.0, 10.0, 100.0, 1e3, 1e4),
                                 groups=owner, folds=3)
            cells = " | ".join(f"{float(v):.2f}" for v in result["r2"])
            print(f"| {name} | {pooled} x {pooled} | {result['r2_mean']:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
