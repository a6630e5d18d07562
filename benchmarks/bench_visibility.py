"""What each camera view lets a frozen encoder read: linear probes per view, trained encoder vs its twin.

    python benchmarks/bench_visibility.py --train DIR --val DIR [--encoder checkpoints]

DIR: datasets collected with both views (`ami-robot collect env_kwargs.views=[exterior,wrist]`, or
`reproduce`'s). For the exterior view, the wrist view and both together it prints the probe R^2 of
TCP xyz, gripper closure and object xyz (`probe_encoder`: 4 x 4 pooled tokens per view, ridge
strength by episode-grouped cross-validation on the training frames, scored on the validation
episodes), from the given encoder and from its random-init twin (the same architecture, seed 0).
A quantity a task needs must read well above the twin before any predictor is trained on it
(DESIGN.md, lesson 1). ~5 min on 2 cores for ~10k frames.
"""

from __future__ import annotations

import argparse

import torch

from ami_robot.data import load_trajectories
from ami_robot.hub import load_part
from ami_robot.models import VisionTransformer
from ami_robot.train.pipeline import PROBE_TARGETS, probe_encoder

VIEW_SETS = {"exterior": [0], "wrist": [1], "both": [0, 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--encoder", default="checkpoints")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if load_trajectories(args.val).views != 2:
        raise SystemExit(f"{args.val} holds one view; collect with env_kwargs.views=[exterior,wrist]")
    encoder = load_part(args.encoder, "encoder")
    torch.manual_seed(0)  # the twin reproduce measures (PretrainConfig.seed's default)
    twin = VisionTransformer(encoder.config)
    print("| encoder | view | R^2 mean | " + " | ".join(PROBE_TARGETS) + " |")
    print("|---|---|---|" + "---|" * len(PROBE_TARGETS))
    for name, model in (("trained", encoder), ("random twin", twin)):
        for view, picked in VIEW_SETS.items():
            result = probe_encoder(model, args.train, args.val, views=picked)
            cells = " | ".join(f"{v:.2f}" for v in result["r2"].values())
            print(f"| {name} | {view} | {result['r2_mean']:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
