"""Without the `[lerobot]` extra (the main venv): LeRobot folders are recognised and the error says how
to install it; `collect format=` names its choices. tests/data/test_lerobot.py covers the rest."""

import importlib.util
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ami_robot.apps.common import AppError
from ami_robot.apps.schemas import CollectArgs, app_args
from ami_robot.data import CollectConfig, LeRobotError, collect, load_trajectories

needs_no_lerobot = pytest.mark.skipif(importlib.util.find_spec("lerobot") is not None,
                                      reason="lerobot is installed: tests/data/test_lerobot.py runs instead")


@needs_no_lerobot
def test_a_lerobot_folder_without_the_extra_names_the_install_command(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v3.0", "features": {}}))
    with pytest.raises(LeRobotError, match=r"pip install -e '\.\[lerobot\]'"):
        load_trajectories(tmp_path)
    cfg = CollectConfig(out_dir=str(tmp_path / "out"), episodes=1, num_workers=0)
    with pytest.raises(LeRobotError, match=r"pip install -e '\.\[lerobot\]'"):
        collect(cfg, out_format="lerobot")


def test_collect_format_names_its_choices() -> None:
    assert CollectArgs().format == "shards"
    with pytest.raises(AppError) as refused:
        app_args(OmegaConf.create({"format": "parquet", "collect": {}}), CollectArgs, "collect")
    assert "format must be one of shards, lerobot" in refused.value.message
    assert "parquet" in refused.value.message
