"""From the final goal image alone, LatentMPC plans through the sub-goals the task's shipped maker
makes (PickPlace, Push with the two-view model); other tasks, or subgoal_maker=None, plan flat. The
made sub-goals are shown by the nearest real training frames, named in the episode record and
written as PNGs; a maker that does not fit the world model is refused with the fix."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from ami_robot.agent import observed_frames
from ami_robot.episodes import make_env, run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.models import PREDICTOR_CONFIGS
from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker
from ami_robot.policies import LatentMPC
from ami_robot.weights import load_subgoal_maker, save_subgoal_maker
from ami_robot.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[2]
TWO_VIEW = ROOT / "checkpoints" / "two_view"
BOTH = ("exterior", "wrist")
PLANNER = {"name": "cem", "samples": 8, "iterations": 1, "topk": 2}


@pytest.fixture(scope="module")
def shipped() -> WorldModel:
    return WorldModel.from_checkpoint(TWO_VIEW)


def test_a_known_training_episode_gets_its_own_moments_and_ends_at_its_goal(shipped) -> None:
    # The gallery holds training seeds 0-3 (first frame, every sub-goal image, goal); seed 2's made
    # sub-goals, from its first frame and goal image alone, are shown by seed 2's own frames, moment
    # by moment, and the schedule ends at its goal image.
    policy = LatentMPC(shipped, PLANNER, goals="final", subgoal_budgets=(5,), subgoal_frames=4)
    env = make_env("PickPlace", palette="train", views=BOTH, image_size=64, subgoals="all")
    obs, info = env.reset(seed=2)
    policy.reset(obs, info)
    made = policy.made_subgoals(0)
    moments = ["above_object", "around", "closed", "grasped", "above_target", "lowered", "released"]
    assert [m["moment"] for m in made] == moments
    assert [m["shown_by"] for m in made] == [f"seed 2 {m}" for m in moments]
    schedule = policy.schedules[0]
    assert len(schedule.goals) == 8 and schedule.budgets == [5] * 7
    assert np.array_equal(schedule.goals[-1], observed_frames(info, BOTH, "goal_"))
    assert schedule.latents[-1] is None
    assert np.array_equal(schedule.goals[-2], observed_frames(info, BOTH, "subgoal_")[6])  # released
    # made latents are what the planner aims at; the first action's time includes the making
    assert schedule.latent is not None and schedule.latent.shape == (1, 128, 192)
    policy.act(obs)
    assert len(policy.planning_seconds) == 1


def test_reach_and_subgoal_maker_none_plan_flat(shipped) -> None:
    env = make_env("Reach", views=BOTH, image_size=64)
    obs, info = env.reset(seed=20000)
    policy = LatentMPC(shipped, PLANNER, subgoal_frames=0)
    policy.reset(obs, info)
    assert len(policy.schedules[0].goals) == 1 and policy.made_subgoals(0) == []
    env = make_env("Push", views=BOTH, image_size=64)
    obs, info = env.reset(seed=20000)
    policy = LatentMPC(shipped, PLANNER, subgoal_maker=None)
    policy.reset(obs, info)
    assert len(policy.schedules[0].goals) == 1
    policy = LatentMPC(shipped, PLANNER, subgoal_frames=0)  # no gallery: the final image stands in
    policy.reset(obs, info)
    made = policy.made_subgoals(0)
    assert [m["moment"] for m in made] == ["above_behind", "behind", "at_goal"]
    assert made[0]["shown_by"] is None
    assert np.array_equal(made[0]["image"], observed_frames(info, BOTH, "goal_"))


def test_the_runner_names_made_subgoals_and_writes_their_frames(tmp_path: Path) -> None:
    # a micro world model and an untrained maker of its size, in a folder of the user's
    micro = WorldModel.random("micro", dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2), seed=0)
    enc = micro.encoder.config
    maker = SubgoalMaker(SubgoalConfig(input_dim=enc.dim, grid=enc.grid, views=2, moments=4, dim=16, depth=1,
                                       heads=2, mlp_dim=32))
    moments = ["above_behind", "behind", "at_goal", "pushed"]
    (tmp_path / "makers").mkdir()
    save_subgoal_maker(maker, tmp_path / "makers" / "subgoals_Push.safetensors", {"moments": moments})
    policy = LatentMPC(micro, PLANNER, subgoal_budgets=(1,), subgoal_maker=str(tmp_path / "makers"),
                       subgoal_frames=2)
    log = EpisodeLog(tmp_path / "episodes.jsonl", {"test": 1})
    records = run_episodes("Push", [20000], lambda: policy, log, "made", progress=False, batch_size=1,
                           env_kwargs={"views": BOTH, "image_size": enc.img_size},
                           subgoal_dir=tmp_path / "subgoals")
    assert [m["moment"] for m in records[0]["subgoals"]] == moments[:3]
    assert all(m["shown_by"].startswith("seed ") and m["l1"] >= 0 for m in records[0]["subgoals"])
    pngs = sorted((tmp_path / "subgoals" / "Push_made_seed20000").iterdir())
    assert [p.name for p in pngs] == ["00_above_behind.png", "01_behind.png", "02_at_goal.png"]
    assert imageio.imread(pngs[0]).shape == (2 * enc.img_size, enc.img_size, 3)
    logged = json.loads((tmp_path / "episodes.jsonl").read_text().splitlines()[-1])
    assert logged["subgoals"] == records[0]["subgoals"]


def test_a_maker_for_another_world_model_is_refused(tmp_path: Path) -> None:
    config = dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2)
    micro = WorldModel.random("micro", config, seed=0)
    shutil.copy(TWO_VIEW / "subgoals_Push.safetensors", tmp_path)
    shutil.copy(TWO_VIEW / "subgoals_Push.json", tmp_path)
    policy = LatentMPC(micro, PLANNER, subgoal_maker=str(tmp_path), subgoal_frames=0)
    env = make_env("Push", views=BOTH, image_size=32)
    obs, info = env.reset(seed=20000)
    with pytest.raises(ValueError, match="use the world model it was trained with, or subgoal_maker=null"):
        policy.reset(obs, info)


def test_bad_maker_arguments_are_refused_before_any_env(shipped, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="subgoal_maker='/no/such': no such folder"):
        LatentMPC.check_args(shipped, subgoal_maker="/no/such")
    with pytest.raises(ValueError, match="subgoal_frames=-1: give a whole number"):
        LatentMPC(shipped, PLANNER, subgoal_frames=-1)


def test_maker_files_round_trip_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    maker = SubgoalMaker(SubgoalConfig(input_dim=16, grid=2, views=1, moments=3, dim=16, depth=1, heads=2,
                                       mlp_dim=32))
    card = save_subgoal_maker(maker, tmp_path / "subgoals_Push.safetensors", {"task": "Push"})
    loaded, read = load_subgoal_maker(tmp_path / "subgoals_Push.safetensors")
    assert read == card and read["config"]["moments"] == 3
    for name, tensor in maker.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    data = bytearray((tmp_path / "subgoals_Push.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "subgoals_Push.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its card"):
        load_subgoal_maker(tmp_path / "subgoals_Push.safetensors")
