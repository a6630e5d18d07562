"""The encoder pretraining loop: JEPA on frames of our own collected trajectories.

Resumable (an atomic training checkpoint every `checkpoint_every` steps: kill -9 loses at most
that much), deterministic given the seed, and distributed under torchrun (each rank takes its
slice of every global batch; DDP averages the gradients). Writes `metrics.jsonl` and, at the end,
the EMA target encoder as our safetensors checkpoint with a model card.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ami_robot.data import ClipDataset
from ami_robot.hub import load_part
from ami_robot.models.encoder import ENCODER_CONFIGS, EncoderConfig, VisionTransformer
from ami_robot.models.predictor import PREDICTOR_CONFIGS, ACPredictor, PredictorConfig
from ami_robot.train.common import (
    MetricsLog,
    ScheduleConfig,
    TrainingState,
    ema_update,
    learning_rate,
    seed_everything,
    set_lr,
    setup_distributed,
    step_batches,
    unwrap,
)
from ami_robot.train.jepa import (
    JEPA,
    MaskPredictor,
    jepa_loss,
    next_frame_loss,
    variance_covariance_loss,
    video_from_frames,
)
from ami_robot.train.masks import MaskConfig, sample_block_masks
from ami_robot.train.probe import feature_spread


@dataclass(frozen=True)
class PretrainConfig:
    encoder: str = "tiny"  # a name in ENCODER_CONFIGS (patch grid must match the data's frame size)
    predictor_dim: int = 96  # narrow, as in V-JEPA (384 for ViT-L at 1024)
    predictor_depth: int = 4
    predictor_heads: int = 2
    num_frames: int = 2  # frames per sample: one tubelet
    frame_skip: int = 1  # frames between the two of a tubelet
    repeat_prob: float = 0.5  # share of samples whose tubelet repeats one frame, as planning encodes images
    batch_size: int = 64  # global, across ranks
    steps: int = 3000
    peak_lr: float = 5e-4
    warmup_steps: int = 200
    schedule_kind: str = "wsd"  # warmup-constant-decay as V-JEPA 2, or "cosine"
    weight_decay: float = 0.04
    grad_clip: float = 1.0
    ema_start: float = 0.99  # EMA momentum ramps linearly from ema_start to ema_end
    ema_end: float = 0.999
    masks: MaskConfig = field(default_factory=MaskConfig)
    dynamics_weight: float = 1.0  # the action-conditioned next-frame term (0: masked prediction only)
    dynamics_predictor: str = "tiny"  # its AC predictor, a name in PREDICTOR_CONFIGS
    var_weight: float = 0.0  # VICReg variance hinge on the context features (0 disables)
    cov_weight: float = 0.0  # VICReg covariance term
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 20
    # Encoder weights to go on from (a hub folder or encoder.safetensors): longer pretraining of a
    # finished run. Both the context encoder and the EMA target start there; the mask predictor
    # and dynamics head start fresh, which is what warmup_steps is for.
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.encoder not in ENCODER_CONFIGS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {sorted(ENCODER_CONFIGS)}")
        self.schedule  # noqa: B018 (validates the schedule fields)
        if self.dynamics_weight > 0:
            if self.dynamics_predictor not in PREDICTOR_CONFIGS:
                raise ValueError(f"unknown dynamics_predictor {self.dynamics_predictor!r}; choose from "
                                 f"{sorted(PREDICTOR_CONFIGS)}")
            self.dynamics_config  # noqa: B018 (validates the shapes against the encoder)
        if self.num_frames < 2:
            raise ValueError("num_frames must be >= 2 (a tubelet, and a next frame for the dynamics term)")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (the variance term needs a batch)")
        if not 0.0 <= self.ema_start <= self.ema_end <= 1.0:
            raise ValueError("need 0 <= ema_start <= ema_end <= 1")

    @property
    def encoder_config(self) -> EncoderConfig:
        return ENCODER_CONFIGS[self.encoder]

    @property
    def dynamics_config(self) -> PredictorConfig:
        """The dynamics head: the named predictor, fitted to this encoder's width and patch grid."""
        e = self.encoder_config
        return replace(PREDICTOR_CONFIGS[self.dynamics_predictor], input_dim=e.dim, img_size=e.img_size,
                       patch_size=e.patch_size, tubelet_size=e.tubelet_size)

    @property
    def schedule(self) -> ScheduleConfig:
        return ScheduleConfig(peak_lr=self.peak_lr, warmup_steps=self.warmup_steps, total_steps=self.steps,
                              kind=self.schedule_kind)


def initial_encoder(path: str | Path, config: EncoderConfig) -> VisionTransformer:
    """The encoder at `path` (a hub folder, or ours per file) to train on; its config must be `config`."""
    encoder = load_part(path, "encoder")
    if encoder.config != config:
        raise ValueError(f"pretrain.init_from={path} is a {encoder.config}, but this run trains a "
                         f"{config}: set pretrain.encoder to its size")
    return encoder


def pretrain_encoder(
    cfg: PretrainConfig, data_dir: str | Path, out_dir: str | Path, device: str = "auto",
    progress: bool = True, stop_after: int | None = None, strict_data: bool = False,
) -> dict[str, Any]:
    """Train (or resume) an encoder; returns a summary. The shipped weights are the EMA target's.

    stop_after: leave the loop after that many steps in total (as an interruption would), so a
    long run can be split across sessions; the next call resumes from the checkpoint.
    strict_data: a damaged shard or a repeated episode stops training (ShardError) instead of
    being skipped with a warning; the summary's `data` says what was used and skipped either way.
    """
    dist_info = setup_distributed(device)
    dev = dist_info.device
    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    # Clips of num_frames frames: the first tubelet for masked prediction, frames 0 -> 1 and the
    # action between them (the V-JEPA 2-AC convention, from the states) for the dynamics term.
    data = ClipDataset(data_dir, clip_len=cfg.num_frames - 1, frame_skip=max(1, cfg.frame_skip),
                       strict=strict_data)
    ecfg = cfg.encoder_config
    frame_size, views = data.data.frames.shape[2], data.data.views  # frames stack `views` squares
    if frame_size != ecfg.img_size:
        raise ValueError(f"data frames are {frame_size} px but encoder {cfg.encoder!r} expects "
                         f"{ecfg.img_size} px; collect at the encoder's size or choose a matching encoder")

    encoder = VisionTransformer(ecfg)
    predictor = MaskPredictor(ecfg.dim, cfg.predictor_dim, cfg.predictor_depth, cfg.predictor_heads, ecfg.eps)
    dynamics = ACPredictor(cfg.dynamics_config) if cfg.dynamics_weight > 0 else None
    model = JEPA(encoder, predictor, dynamics).to(dev)
    target = copy.deepcopy(encoder).to(dev).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.schedule.peak_lr, betas=(0.9, 0.999),
                                  weight_decay=cfg.weight_decay)
    resume = TrainingState(out_dir, asdict(cfg), {"model": model, "target": target, "optimizer": optimizer})
    start_step = resume.step
    if cfg.init_from is not None and start_step == 0:  # a resumed run's checkpoint holds its own weights
        start = initial_encoder(cfg.init_from, ecfg).state_dict()
        encoder.load_state_dict(start)
        target.load_state_dict(start)
    if dist_info.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    log = MetricsLog(out_dir / "metrics.jsonl", enabled=dist_info.is_main, start_step=start_step)
    grid = (cfg.num_frames // ecfg.tubelet_size, ecfg.grid, ecfg.grid)
    mask_gen = torch.Generator()
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not (progress and dist_info.is_main), desc="jepa")
    rank, world = dist_info.rank, dist_info.world_size
    for step, idx in step_batches(len(data), cfg.batch_size, cfg.seed, start_step, rank, world):
        if step >= cfg.steps or (stop_after is not None and step >= stop_after):
            break
        mask_gen.manual_seed(cfg.seed * 1_000_003 + step * 97 + dist_info.rank)
        clip = data.get_batch(idx)
        frames = clip["frames"]  # (b, T, V*S, S, 3) uint8
        if views > 1:  # each clip shows one of its views, drawn at random: the cost of one view per step
            view = torch.randint(views, (len(idx),), generator=mask_gen)  # (b,)
            frames = frames.unflatten(2, (views, frame_size))  # (b, T, V, S, S, 3)
            frames = frames[torch.arange(len(idx)), :, view]  # (b, T, S, S, 3)
        stills = frames[:, :2, None].expand(-1, -1, ecfg.tubelet_size, -1, -1, -1)  # (b, 2, t, H, W, 3)
        repeat = torch.rand(len(idx), generator=mask_gen) < cfg.repeat_prob
        frames = frames.clone()
        frames[repeat] = frames[repeat, :1].expand_as(frames[repeat])
        video = video_from_frames(frames).to(dev)
        context_idx, target_idx = sample_block_masks(len(idx), grid, cfg.masks, mask_gen)
        context_idx, target_idx = context_idx.to(dev), target_idx.to(dev)
        now, following = (video_from_frames(stills[:, k]).to(dev) for k in (0, 1))
        with torch.no_grad():
            if video.shape == following.shape:  # one batched pass when the clip is one tubelet
                h, h_next = target(torch.cat([video, following])).split(len(idx))  # (b, N, D) each
            else:
                h, h_next = target(video), target(following)
        z, prediction, predicted_next = model(video, context_idx, target_idx, now,
                                              clip["actions"][:, 0].to(dev), clip["states"][:, 0].to(dev))
        loss_pred = jepa_loss(prediction, h, target_idx)
        var_loss, cov_loss = variance_covariance_loss(z)
        loss = loss_pred + cfg.var_weight * var_loss + cfg.cov_weight * cov_loss
        loss_next = next_frame_loss(predicted_next, h_next) if predicted_next is not None else torch.zeros(())
        loss = loss + cfg.dynamics_weight * loss_next
        lr = learning_rate(step, cfg.schedule)
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        momentum = cfg.ema_start + (cfg.ema_end - cfg.ema_start) * step / max(1, cfg.steps - 1)
        ema_update(target, unwrap(model).encoder, momentum)
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            spread = feature_spread(torch.nn.functional.layer_norm(h, h.shape[-1:]))
            log.write(step=step, loss=loss.item(), jepa_l1=loss_pred.item(), next_l1=loss_next.item(),
                      var=var_loss.item(),
                      cov=cov_loss.item(), lr=lr, grad_norm=grad_norm.item(), target_spread=spread)
            bar.set_postfix(l1=f"{loss_pred.item():.4f}", next=f"{loss_next.item():.4f}",
                            spread=f"{spread:.3f}")
        if dist_info.is_main and resume.due(step, cfg.checkpoint_every, cfg.steps, stop_after):
            resume.save(step)  # `model` in it is the DDP-unwrapped module: same parameter names
    bar.close()
    return {"steps": cfg.steps, "wall_s": resume.wall_s, "frames": data.data.num_frames,
            "data": data.data.usage(), "target_encoder": target.cpu(), "device": str(dev),
            "world_size": dist_info.world_size}
