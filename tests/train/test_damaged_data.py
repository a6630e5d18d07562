"""Training on damaged data: the model card says what was used and skipped (with sha256), and
strict_data makes any damage fatal (the default of `reproduce`, whose weights we ship)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ami_robot.train.pipeline import ReproduceConfig
from tests.apps.conftest import run_cli

SMALL = ["pretrain.encoder=micro", "pretrain.predictor_dim=48", "pretrain.predictor_depth=1",
         "pretrain.predictor_heads=1", "pretrain.batch_size=8", "pretrain.steps=2", "pretrain.warmup_steps=1",
         "pretrain.dynamics_weight=0", "device=cpu"]


def test_train_encoder_records_skipped_shards_or_refuses_them(toy_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    damaged = data / "shard-000001.npz"
    damaged.write_bytes(damaged.read_bytes()[:5000])  # 8 of the 16 episodes
    out = run_cli("train-encoder", *SMALL, f"data_dir={data}", f"out_dir={tmp_path / 'run'}",
                  cwd=tmp_path)  # Hydra's run dir (runs/...) lands under tmp_path, not in the checkout
    assert out.returncode == 0, out.stderr[-3000:]
    assert "skipped 1 damaged shard(s) (8 episodes)" in out.stdout
    card = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert card["data"]["episodes_used"] == 8 and card["data"]["episodes_skipped"] == 8
    assert [s["file"] for s in card["data"]["shards_skipped"]] == ["shard-000001.npz"]
    assert len(card["data"]["shards_skipped"][0]["sha256"]) == 64
    assert [s["file"] for s in card["data"]["shards_used"]] == ["shard-000000.npz"]

    strict = run_cli("train-encoder", *SMALL, f"data_dir={data}", f"out_dir={tmp_path / 'strict'}",
                     "strict_data=true", cwd=tmp_path)
    assert strict.returncode == 2, strict.stderr[-3000:]
    assert "shard-000001.npz is unusable" in strict.stderr and "strict_data=false" in strict.stderr
    assert "Traceback" not in strict.stderr
    assert not (tmp_path / "strict" / "encoder.safetensors").exists()


def test_reproduce_is_strict_by_default() -> None:
    assert ReproduceConfig().strict_data is True
    out = run_cli("reproduce", "--cfg", "job")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "strict_data: true" in out.stdout
