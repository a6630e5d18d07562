import json

import pytest
import torch

from ami_robot.train.common import (
    MetricsLog,
    ScheduleConfig,
    ema_update,
    learning_rate,
    load_training_state,
    save_training_state,
)
from ami_robot.train.masks import MaskConfig, sample_block_masks


def test_wsd_schedule_shape() -> None:
    cfg = ScheduleConfig(peak_lr=1e-3, warmup_steps=10, total_steps=100, decay_fraction=0.2, final_lr=0.0)
    assert learning_rate(0, cfg) == pytest.approx(cfg.start_lr)
    assert learning_rate(10, cfg) == pytest.approx(1e-3)
    assert learning_rate(79, cfg) == pytest.approx(1e-3)
    assert learning_rate(90, cfg) == pytest.approx(5e-4)
    assert learning_rate(100, cfg) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="kind"):
        ScheduleConfig(kind="step")


def test_cosine_schedule_ends_at_final() -> None:
    cfg = ScheduleConfig(peak_lr=1.0, warmup_steps=0, total_steps=10, kind="cosine", final_lr=0.1)
    assert learning_rate(0, cfg) == pytest.approx(1.0)
    assert learning_rate(10, cfg) == pytest.approx(0.1)


def test_training_state_roundtrip_is_atomic(tmp_path) -> None:
    path = tmp_path / "ckpt" / "last.pt"
    assert load_training_state(path) is None
    save_training_state(path, {"step": 3, "w": torch.ones(2)})
    save_training_state(path, {"step": 4, "w": torch.zeros(2)})
    state = load_training_state(path)
    assert state["step"] == 4 and torch.equal(state["w"], torch.zeros(2))
    assert not list(path.parent.glob("*.tmp*"))


def test_two_processes_saving_one_file_do_not_collide(tmp_path) -> None:
    # DDP ranks cache the same latents file; with one shared temporary name one of them lost it.
    import subprocess
    import sys

    code = ("import sys, torch; from ami_robot.train.common import save_training_state as s\n"
            "for i in range(200): s(sys.argv[1], {'i': i, 'w': torch.ones(64)})")
    args = [sys.executable, "-c", code, str(tmp_path / "latents.pt")]
    procs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert load_training_state(tmp_path / "latents.pt")["i"] == 199
    assert not list(tmp_path.glob("*.tmp*"))


def test_ema_update() -> None:
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        for p in online.parameters():
            p.fill_(1.0)
        for p in target.parameters():
            p.fill_(0.0)
    ema_update(target, online, momentum=0.75)
    assert all(torch.allclose(p, torch.full_like(p, 0.25)) for p in target.parameters())


@pytest.mark.parametrize("grid", [(1, 8, 8), (2, 8, 8), (1, 4, 4)])
def test_masks_partition_the_grid(grid) -> None:
    gen = torch.Generator().manual_seed(0)
    context, target = sample_block_masks(6, grid, MaskConfig(), gen)
    n = grid[0] * grid[1] * grid[2]
    assert context.shape[0] == target.shape[0] == 6
    for c, t in zip(context, target, strict=True):
        assert not set(c.tolist()) & set(t.tolist())
        assert int(c.max()) < n and int(t.max()) < n
        assert torch.equal(c, c.sort().values)


def test_masks_are_tubes_through_time() -> None:
    gen = torch.Generator().manual_seed(1)
    context, target = sample_block_masks(1, (2, 8, 8), MaskConfig(num_blocks=1), gen)
    t = set(target[0].tolist())
    # With one sample nothing is truncated: a target patch at (0, r, c) is one at (1, r, c) too.
    frame0 = {i for i in t if i < 64}
    frame1 = {i - 64 for i in t if i >= 64}
    assert frame0 and frame0 == frame1


def test_masks_same_seed_same_masks() -> None:
    a = sample_block_masks(3, (1, 8, 8), MaskConfig(), torch.Generator().manual_seed(5))
    b = sample_block_masks(3, (1, 8, 8), MaskConfig(), torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_resumed_metrics_log_cuts_the_rows_after_its_checkpoint(tmp_path) -> None:
    # A session logged steps 0-4, checkpointed after step 2 (start_step 3) and was killed mid-row.
    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": s, "loss": 1.0 / (s + 1)}) for s in range(5)]
    path.write_text("\n".join(rows) + "\n" + '{"step": 5, "lo')
    log = MetricsLog(path, start_step=3)
    for step in (3, 4):
        log.write(step=step, loss=0.0)
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]
    MetricsLog(path, enabled=False, start_step=0)  # not the main rank: leaves the file alone
    assert len(path.read_text().splitlines()) == 5


def test_resumed_pretraining_logs_every_step_once(toy_data, tmp_path) -> None:
    from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder

    cfg = PretrainConfig(encoder="micro", predictor_dim=48, predictor_depth=1, predictor_heads=1,
                         batch_size=8, steps=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    pretrain_encoder(cfg, toy_data, tmp_path, device="cpu", progress=False, stop_after=2)
    # killed after logging step 2, before the checkpoint after step 3
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 2, "loss": 9.0}) + "\n")
    pretrain_encoder(cfg, toy_data, tmp_path, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[2]["loss"] != 9.0
