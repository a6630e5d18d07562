"""Run by torchrun in test_ddp.py: a few steps of both trainers, each rank saving what it holds."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ami_robot.models.encoder import ENCODER_CONFIGS, VisionTransformer
from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder
from ami_robot.train.train_predictor import PredictorTrainConfig, train_predictor

if __name__ == "__main__":
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    pre = PretrainConfig(encoder="micro", predictor_dim=48, predictor_depth=1, predictor_heads=1,
                         batch_size=8, steps=3, warmup_steps=1, checkpoint_every=10)
    enc = pretrain_encoder(pre, data, out / "encoder", device="cpu", progress=False)
    rank = dist.get_rank()
    torch.save(enc["target_encoder"].state_dict(), out / f"encoder_rank{rank}.pt")
    torch.manual_seed(0)
    frozen = VisionTransformer(ENCODER_CONFIGS["micro"])
    pred = PredictorTrainConfig(predictor="micro", clip_len=2, rollout_steps=1, batch_size=8, steps=3,
                                warmup_steps=1, checkpoint_every=10, holdout_every=4)
    res = train_predictor(pred, data, frozen, out / "predictor", device="cpu", progress=False)
    torch.save(res["predictor"].state_dict(), out / f"predictor_rank{rank}.pt")
    dist.barrier()
