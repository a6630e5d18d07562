"""The encoder's linear probe as JEPA pretraining goes on: does the margin over the random twin grow?

    python benchmarks/bench_encoder_steps.py --data runs/reproduce/data --out runs/enc_scale \
        --steps 3000 --marks 600 1200 1800 2400 3000

One pretraining run (PretrainConfig's defaults, `--steps` in total, so the schedule decays over the
last 20% of them) stopped at every mark, its EMA target encoder probed as `ami-robot reproduce`
probes it (`probe_encoder`: 4 x 4 pooled, 8000 training frames, the validation episodes scored),
then resumed. The random twin (step 0) is the run's own initialisation. Resumable: rerun the same
command and it continues from the last checkpoint, skipping the marks already in probes.jsonl.
The run folder is the one `reproduce` resumes from with `reproduce.pretrain.steps` equal to
`--steps` (copy it to OUT_DIR/encoder). ~1.4 s per step plus ~70 s per probe on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from ami_robot.models import VisionTransformer
from ami_robot.train.pipeline import PROBE_TARGETS, probe_encoder
from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with train/ and val/ (reproduce's data)")
    parser.add_argument("--out", required=True, help="run folder: train/ and probes.jsonl")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--marks", type=int, nargs="+", default=[600, 1200, 1800, 2400, 3000])
    args = parser.parse_args()
    if any(m < 1 or m > args.steps for m in args.marks):
        parser.error(f"every mark must lie in 1..--steps ({args.steps}); got {args.marks}")
    torch.set_num_threads(2)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = replace(PretrainConfig(), steps=args.steps)
    log = out / "probes.jsonl"
    rows = {row["step"]: row for row in map(json.loads, log.read_text().splitlines())} if log.exists() else {}

    if 0 not in rows:
        torch.manual_seed(cfg.seed)  # the initialisation pretrain_encoder starts from
        rows[0] = _record(log, 0, 0.0, probe_encoder(VisionTransformer(cfg.encoder_config), data / "train",
                                                     data / "val"))
    for mark in sorted(args.marks):
        if mark in rows:
            continue
        run = pretrain_encoder(cfg, data / "train", out / "train", device="cpu", stop_after=mark)
        rows[mark] = _record(log, mark, run["wall_s"], probe_encoder(run["target_encoder"], data / "train",
                                                                     data / "val"))

    print("| step | training min | R^2 mean | margin | " + " | ".join(PROBE_TARGETS) + " |")
    print("|---|---|---|---|" + "---|" * len(PROBE_TARGETS))
    for step in sorted(rows):
        row = rows[step]
        cells = " | ".join(f"{v:.3f}" for v in row["r2"].values())
        margin = row["r2_mean"] - rows[0]["r2_mean"]
        print(f"| {step} | {row['train_wall_s'] / 60:.1f} | {row['r2_mean']:.3f} | {margin:+.3f} | {cells} |")


def _record(log: Path, step: int, wall_s: float, probe: dict) -> dict:
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    row = {"step": step, "train_wall_s": round(wall_s, 1), "when": when, **probe}
    with log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


if __name__ == "__main__":
    main()
