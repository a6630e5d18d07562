"""The encoder's linear probe at several poolings of its token grid, trained encoder vs its random twin.

    python benchmarks/bench_probe_pooling.py --train runs/reproduce/data/train --val runs/reproduce/data/val

`ami-robot reproduce` probes 4 x 4 pooled features (the model card's figure); the full grid keeps
where things are at patch resolution but gives the ridge 4x the inputs for the same frames. Both
encoders get the same probe (`probe_encoder`: frames, ridge strengths, cross-validation). Slow at
the full grid: ~10 min on 2 cores.
"""

from __future__ import annotations

import argparse

import torch

from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.hub import load_part
from ami_robot.models import VisionTransformer
from ami_robot.train.pipeline import PROBE_TARGETS, probe_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--pooled", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    torch.set_num_threads(2)
    encoder = load_part(shipped_checkpoint_dir(), "encoder")
    torch.manual_seed(0)  # the twin reproduce measures (PretrainConfig.seed's default)
    twin = VisionTransformer(encoder.config)
    print("| encoder | pooled | R^2 mean | " + " | ".join(PROBE_TARGETS) + " |")
    print("|---|---|---|" + "---|" * len(PROBE_TARGETS))
    for name, model in (("trained", encoder), ("random twin", twin)):
        for pooled in args.pooled:
            result = probe_encoder(model, args.train, args.val, pooled=pooled)
            cells = " | ".join(f"{v:.2f}" for v in result["r2"].values())
            print(f"| {name} | {pooled} x {pooled} | {result['r2_mean']:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
