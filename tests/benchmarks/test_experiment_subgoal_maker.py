"""`ami-robot train-subgoals` and benchmarks/experiment_subgoal_maker.py at a tiny size: latents,
training (resumed), the maker file and planning toward made sub-goals from the final image run end
to end; the shipped makers load with their cards; the evaluation seeds are refused (no time asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from ami_robot.weights import load_subgoal_maker
from tests.apps.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "experiment_subgoal_maker.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--threads", "1"], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"}, timeout=600)


def test_train_a_maker_resume_it_and_plan_through_it(tmp_path: Path) -> None:
    makers = tmp_path / "makers"
    train = ["train-subgoals", "task=Push", "seeds=4", "training.steps=2", "training.held_out=1",
             f"out={makers / 'subgoals_Push.safetensors'}", f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_cli(*train)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((makers / "subgoals_Push.json").read_text())
    assert card["task"] == "Push" and card["moments"][:3] == ["above_behind", "behind", "at_goal"]
    assert len(card["held_out_l1"]["maker"]) == 4 and card["data"]["held_out_seeds"] == 1
    shipped = json.loads((ROOT / "checkpoints" / "two_view" / "subgoals_Push.json").read_text())
    assert card["world_model_sha256"] == shipped["world_model_sha256"]  # the two-view model's latents
    again = run_cli(*train)  # the same run folder: nothing collected or trained twice
    assert again.returncode == 0, again.stderr[-2000:]
    assert "latents of 4 resets already in" in again.stdout and "resumed at step 2" in again.stdout
    done = _run("eval", "--task", "Push", "--out", str(tmp_path / "runs"), "--makers", str(makers),
                "--episodes", "1", "--samples", "16", "--iterations", "1", "--budget", "1")
    assert done.returncode == 0, done.stderr
    assert "Push from the final image, made sub-goals ['above_behind', 'behind', 'at_goal']: " in done.stdout
    record = json.loads((tmp_path / "runs" / "Push_eval" / "episodes.jsonl").read_text().splitlines()[-1])
    assert record["seed"] == 20000 and len(record["energies"]) == 60


def test_the_shipped_makers_load_and_make_normalised_latents() -> None:
    for task, moments in (("PickPlace", 8), ("Push", 4), ("Grasp", 4)):
        maker, card = load_subgoal_maker(ROOT / "checkpoints" / "two_view" / f"subgoals_{task}.safetensors")
        assert card["task"] == task and maker.config.moments == moments == len(card["moments"])
        z = torch.randn(2, maker.config.tokens, maker.config.input_dim)
        z = torch.nn.functional.layer_norm(z, z.shape[-1:])
        with torch.no_grad():
            made = maker(z, z.flip(0), torch.tensor([0, 1]))
        assert made.shape == z.shape and made.std(-1).mean().item() > 0.9
        # what the maker learned beats copying the first frame on every moment the planner gets (all
        # but the last, which is the final image itself)
        l1 = card["held_out_l1"]
        made = list(zip(l1["maker"], l1["copy_first"], strict=True))[: moments - 1]
        assert all(0 < m < c for m, c in made)


def test_evaluation_seeds_are_refused() -> None:
    done = _run("eval", "--task", "Push", "--seed-start", "10000")
    assert done.returncode == 2 and "development seeds" in done.stderr
