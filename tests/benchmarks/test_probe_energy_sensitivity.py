"""benchmarks/probe_energy_sensitivity.py scores the goal state itself at exactly zero (the goal image is
re-rendered from the state reset realised), moving the object or the hand raises the energy, and
evaluation seeds are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MUJOCO_GL", "egl")

from bench_expert_energy import load_model  # noqa: E402
from probe_energy_sensitivity import DISTANCES, moved_energies, random_twin  # noqa: E402

from ami_robot.episodes import make_env  # noqa: E402


def test_the_goal_state_scores_zero_and_moves_cost() -> None:
    views = ("exterior",)
    wm, _ = load_model(None, len(views))  # the shipped one-view model's encoder
    env = make_env("Push", palette="heldout", views=views, image_size=64)
    try:
        obs, _ = env.reset(seed=20001)
        goal_object = env.unwrapped.goal.position.copy()
        moved = {body: moved_energies(env, obs, wm, views, body) for body in ("object", "hand")}
    finally:
        env.close()
    assert moved["object"].shape == (len(DISTANCES), len(views) + 1)
    assert moved["object"][0, -1] == 0.0  # nothing moved: the goal image's own frames
    assert moved["object"][-1, -1] > moved["object"][1, -1] > 0.0  # 10 cm off costs more than 1 cm
    assert moved["hand"][-1, -1] > moved["hand"][0, -1]
    assert np.allclose(moved["object"][:, 0], moved["object"][:, -1])  # one view: the view is all
    assert np.allclose(env.unwrapped.goal.position, goal_object)  # the probe leaves the goal alone


def test_the_random_twin_is_the_same_architecture_untrained() -> None:
    wm, _ = load_model(None, 1)
    twin = random_twin(wm, torch.float32)
    assert twin.encoder.config == wm.encoder.config and twin.predictor is wm.predictor
    trained, fresh = wm.encoder.state_dict(), twin.encoder.state_dict()
    assert all(not torch.equal(trained[k], fresh[k]) for k in trained if k.endswith("qkv.weight"))
    again = random_twin(wm, torch.float32).encoder.state_dict()
    assert all(torch.equal(fresh[k], again[k]) for k in fresh)  # seeded: the same twin every run


def test_evaluation_seeds_are_refused() -> None:
    script = ROOT / "benchmarks" / "probe_energy_sensitivity.py"
    done = subprocess.run([sys.executable, str(script), "--seed-start", "10000"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "development seeds" in done.stderr
