import json
import os
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml

from ami_robot.apps.common import shipped_checkpoint_dir
from ami_robot.episodes import make_env
from ami_robot.train.pretrain import PretrainConfig
from tests.apps.conftest import FAST

pytestmark = pytest.mark.filterwarnings("ignore")


def _episodes(path):
    return [json.loads(line) for line in path.read_text().splitlines() if '"header"' not in line]


def test_help_lists_commands(cli) -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("demo", "plan", "eval", "bench", "energy", "collect", "reproduce"):
        assert command in out.stdout


def test_unknown_command(cli) -> None:
    out = cli("evaluate")
    assert out.returncode != 0 and "choose from" in out.stderr


def test_eval_writes_protocol_files_and_refuses_a_different_config(cli, tmp_path) -> None:
    run = tmp_path / "eval"
    args = ["eval", *FAST, "tasks=[Reach]", "episodes=2", "batch_size=2", f"hydra.run.dir={run}"]
    out = cli(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    records = _episodes(run / "episodes.jsonl")
    assert sorted(r["seed"] for r in records) == [10_000, 10_001]
    assert all(r["steps"] == 30 and len(r["plan_seconds"]) == 30 for r in records)
    summary = json.loads((run / "summary.json").read_text())
    row = summary["summary"]["Reach/latent_icem_two_view"]
    assert row["episodes"] == 2 and len(row["wilson95"]) == 2
    assert summary["machine"]["torch_threads"] >= 1 and "commit" in summary["machine"]
    assert "uncommitted_changes" in summary["machine"]
    assert "| Reach | latent_icem_two_view | 2 |" in (run / "results.md").read_text()
    # Resuming into the same folder with another planner is refused, and nothing is lost.
    again = cli("eval", *FAST[:-3], "planner.samples=12", "planner.iterations=1", "planner.topk=2",
                "tasks=[Reach]", "episodes=2", f"hydra.run.dir={run}")
    assert again.returncode == 2 and "different configuration" in again.stderr
    assert len(_episodes(run / "episodes.jsonl")) == 2


def test_eval_refuses_training_seeds(cli, tmp_path) -> None:
    out = cli("eval", *FAST, "seed_start=5", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2 and "training split" in out.stderr


def test_bad_names_are_listed(cli, tmp_path) -> None:
    out = cli("eval", *FAST, "tasks=[Fly]", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2 and "Reach" in out.stderr and "PickPlace" in out.stderr
    out = cli("eval", "planner=beam", f"hydra.run.dir={tmp_path}")
    assert out.returncode != 0 and "cem" in out.stderr and "mppi" in out.stderr
    out = cli("eval", "model=huge", f"hydra.run.dir={tmp_path}")
    assert out.returncode != 0 and "shipped" in out.stderr and "random" in out.stderr


def test_checkpoint_that_does_not_match(cli, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    common = ["eval", f"model.path={folder}", "tasks=[Reach]", "episodes=1"]
    out = cli(*common, f"hydra.run.dir={tmp_path / 'a'}")
    assert out.returncode == 2 and "encoder.safetensors" in out.stderr
    from ami_robot.models.encoder import ENCODER_CONFIGS, VisionTransformer
    from ami_robot.models.predictor import PREDICTOR_CONFIGS, ACPredictor
    from ami_robot.weights import save_model

    save_model(VisionTransformer(ENCODER_CONFIGS["micro"]), folder / "encoder.safetensors")
    save_model(ACPredictor(PREDICTOR_CONFIGS["tiny"]), folder / "predictor.safetensors")  # dim 192 != 96
    out = cli(*common, f"hydra.run.dir={tmp_path / 'b'}")
    assert out.returncode == 2 and "cannot load the model" in out.stderr


def test_unwritable_output_dir(cli, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("eval", *FAST, f"hydra.run.dir={blocker}/run")
    assert out.returncode != 0 and "run" in out.stderr


def test_plan_from_a_goal_image_of_any_size(cli, tmp_path) -> None:
    goal = tmp_path / "goal.png"
    imageio.imwrite(goal, np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    out = cli("plan", *FAST, f"goal={goal}", "task=Reach", "steps=3", f"hydra.run.dir={tmp_path / 'p'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "centre-cropped to 90x90" in out.stdout and "resized to 64x64" in out.stdout
    assert (tmp_path / "p" / "plan.mp4").stat().st_size > 0
    assert (tmp_path / "p" / "energy.png").stat().st_size > 0


def test_plan_with_a_bfloat16_model_and_the_gradient_planner(cli, tmp_path) -> None:
    goal = tmp_path / "goal.png"
    imageio.imwrite(goal, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    out = cli("plan", "model=random", "model.dtype=bfloat16", "env.image_size=64", "planner=gradient",
              "planner.starts=2", "planner.iterations=2", f"goal={goal}", "task=Reach", "steps=2",
              f"hydra.run.dir={tmp_path / 'p'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "p" / "plan.mp4").stat().st_size > 0


def test_plan_from_one_image_makes_sub_goals_with_the_two_view_model(cli, tmp_path) -> None:
    # eval's two-view model (plan's default): one image of both cameras stacked, PickPlace
    env = make_env("PickPlace", views=("exterior", "wrist"), image_size=64)
    _, info = env.reset(seed=20001)
    goal = tmp_path / "goal.png"
    imageio.imwrite(goal, np.concatenate([info["goal_pixels"], info["goal_wrist_pixels"]]))
    out = cli("plan", f"goal={goal}", "steps=2", "subgoal_frames=2", "planner.samples=8",
              "planner.iterations=1", "planner.topk=2", f"hydra.run.dir={tmp_path / 'p'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 cameras of 64x64" in out.stdout and "sub-goals made from the goal image" in out.stdout
    assert "above_object (seed " in out.stdout and "camera | sub-goal | goal" in out.stdout
    names = sorted(p.name for p in (tmp_path / "p" / "subgoals").iterdir())
    assert names[0] == "00_above_object.png" and names[-1] == "06_released.png"
    assert imageio.mimread(tmp_path / "p" / "plan.mp4")[0].shape[:2] == (128, 192)  # three panels
    imageio.imwrite(goal, info["goal_pixels"])  # the exterior camera alone
    out = cli("plan", f"goal={goal}", "steps=1", f"hydra.run.dir={tmp_path / 'q'}")
    assert out.returncode == 2 and "stacked top to bottom" in out.stderr and "model=shipped" in out.stderr


def test_plan_bad_goal_images(cli, tmp_path) -> None:
    out = cli("plan", *FAST, f"goal={tmp_path / 'missing.png'}", f"hydra.run.dir={tmp_path / 'a'}")
    assert out.returncode == 2 and "does not exist" in out.stderr
    gray = tmp_path / "gray.png"
    imageio.imwrite(gray, np.zeros((32, 32), np.uint8))
    out = cli("plan", *FAST, f"goal={gray}", f"hydra.run.dir={tmp_path / 'b'}")
    assert out.returncode == 2 and "RGB" in out.stderr
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    out = cli("plan", *FAST, f"goal={junk}", f"hydra.run.dir={tmp_path / 'c'}")
    assert out.returncode == 2 and "cannot read goal image" in out.stderr


def test_bench_table_and_chart(cli, tmp_path) -> None:
    out = cli("bench", *FAST, "tasks=[Reach]", "episodes=2", "methods=[random,expert,latent_cem]",
              f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    table = (tmp_path / "results.md").read_text()
    assert "| Reach | expert | 2 | 2/2" in table  # the privileged expert solves Reach
    assert "| Reach | random |" in table and "| Reach | latent_cem |" in table
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_a_users_own_policy_joins_the_bench(cli, tmp_path) -> None:
    out = cli("bench", *FAST, "tasks=[Reach]", "episodes=1", "methods=[still]",
              "+policies.still._target_=tests.apps.still_policy.StandStill", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| Reach | still | 1 |" in (tmp_path / "results.md").read_text()


def test_energy_landscape(cli, tmp_path) -> None:
    out = cli("energy", "model=random", "env.image_size=64", "points=5", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "energy.json").read_text())
    assert {"model", "simulator_frames"} <= set(result)
    assert (tmp_path / "energy.png").stat().st_size > 0


def test_multirun_with_the_local_launcher(cli, tmp_path) -> None:
    out = cli("eval", "--multirun", *FAST, "tasks=[Reach]", "episodes=1", "seed_start=10000,10001",
              f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    seeds = sorted(r["seed"] for job in ("0", "1") for r in _episodes(tmp_path / job / "episodes.jsonl"))
    assert seeds == [10_000, 10_001]


def test_eval_survives_sigkill_and_resumes_exactly(tmp_path) -> None:
    run = tmp_path / "eval"
    args = [sys.executable, "-c", "from ami_robot.apps import main; main()", "eval", *FAST, "tasks=[Reach]",
            "episodes=4", "batch_size=1", f"hydra.run.dir={run}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(args, start_new_session=True, **quiet)
    log = run / "episodes.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(_episodes(log)) < 1):
        time.sleep(0.2)
    time.sleep(0.5)  # into the next episode
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(_episodes(log))
    assert 1 <= before < 4
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    seeds = [r["seed"] for r in _episodes(log)]
    assert sorted(seeds) == [10_000, 10_001, 10_002, 10_003]  # each exactly once
    summary = json.loads((run / "summary.json").read_text())["summary"]["Reach/latent_icem_two_view"]
    assert summary["episodes"] == 4


def test_nested_config_overrides_keep_the_other_defaults() -> None:
    from ami_robot.apps.common import AppError, build_dataclass
    from ami_robot.train.pipeline import ReproduceConfig

    overrides = {"pretrain": {"steps": 10, "warmup_steps": 2}, "train_episodes": 5}
    cfg = build_dataclass(ReproduceConfig, overrides)
    assert cfg.pretrain.steps == 10 and cfg.pretrain.batch_size == ReproduceConfig().pretrain.batch_size
    assert cfg.predictor == ReproduceConfig().predictor and cfg.train_episodes == 5
    with pytest.raises(AppError) as err:
        build_dataclass(ReproduceConfig, {"pretrain": {"stepz": 1}})
    assert "stepz" in err.value.message and "steps" in err.value.message


def test_trainer_fields_override_without_plus_and_are_type_checked(cli) -> None:
    out = cli("train-encoder", "pretrain.steps=7", "pretrain.masks.num_blocks=2", "--cfg", "job")
    assert out.returncode == 0, out.stderr[-2000:]
    pretrain = yaml.safe_load(out.stdout)["pretrain"]
    assert pretrain["steps"] == 7 and pretrain["masks"]["num_blocks"] == 2
    assert pretrain["batch_size"] == PretrainConfig().batch_size  # the rest keep the dataclass defaults
    out = cli("reproduce", "reproduce.predictor.steps=5", "--cfg", "job")
    reproduce = yaml.safe_load(out.stdout)["reproduce"]
    assert reproduce["predictor"]["steps"] == 5 and reproduce["pretrain"]["steps"] == 3000  # reproduce.yaml's
    out = cli("train-predictor", "encoder=x.safetensors", "predictor.steps=many", "--cfg", "job")
    assert out.returncode != 0 and "predictor.steps" in out.stderr


def test_slurm_launcher_config_composes(cli, tmp_path) -> None:
    out = cli("eval", "hydra/launcher=slurm", "--cfg", "hydra")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SlurmLauncher" in out.stdout and "cpus_per_task: 2" in out.stdout


def test_eval_defaults_to_pure_latent_planning_with_the_two_view_model(cli) -> None:
    """What README's pure latent rows ran: the shipped two-view model, iCEM 64 x 3 with whole
    gripper moves, every sub-goal image 5 steps each, rendered at the model's 64 px."""
    cfg = yaml.safe_load(cli("eval", "--cfg", "job").stdout)
    assert cfg["policy"] == {"_target_": "ami_robot.policies.LatentMPC", "goals": "subgoals",
                             "subgoal_budgets": [5], "view_weights": None,  # None: the released energy
                             "subgoal_maker": "auto", "subgoal_frames": 64}  # goals=final: the maker's
    assert cfg["model"]["shipped"] == "two_view" and cfg["model"]["path"] is None
    assert cfg["planner"]["name"] == "icem" and cfg["planner"]["space"]["gripper_snap"] is True
    assert (cfg["planner"]["samples"], cfg["planner"]["iterations"]) == (64, 3)
    assert cfg["env"]["subgoals"] == "all" and cfg["env"]["image_size"] == 64


@pytest.mark.parametrize("name", ["cem", "cem_paper", "gradient", "icem", "mppi", "random_shooting"])
def test_every_planner_option_makes_a_config(cli, name) -> None:
    from ami_robot.planners import make_config

    out = cli("eval", f"planner={name}", "--cfg", "job")
    assert out.returncode == 0, out.stderr[-2000:]
    config = make_config(**yaml.safe_load(out.stdout)["planner"])
    if name == "gradient":  # the CPU budget README's Reach row was measured with
        assert (config.starts, config.iterations, config.horizon) == (8, 20, 1)


def test_bench_policies_take_their_planners_from_the_planner_files(cli) -> None:
    bench = yaml.safe_load(cli("bench", "--cfg", "job").stdout)["policies"]
    for name in ("mppi", "gradient"):
        out = cli("eval", f"planner={name}", "--cfg", "job")
        assert bench[f"latent_{name}"]["planner"] == yaml.safe_load(out.stdout)["planner"]


def test_a_policy_with_its_own_planner_runs_and_is_checked(cli, tmp_path) -> None:
    out = cli("bench", *FAST, "tasks=[Reach]", "episodes=1", "methods=[latent_gradient]",
              "policies.latent_gradient.planner.iterations=2", f"hydra.run.dir={tmp_path / 'ok'}")
    assert out.returncode == 0, out.stderr[-2000:]  # it crashed on a DictConfig planner before
    assert "| Reach | latent_gradient | 1 |" in (tmp_path / "ok" / "results.md").read_text()
    out = cli("bench", *FAST, "tasks=[Reach]", "episodes=1", "methods=[latent_mppi]",
              "policies.latent_mppi.planner.samples=1", f"hydra.run.dir={tmp_path / 'bad'}")
    assert out.returncode == 2 and "bad planner config" in out.stderr


def test_memory_and_the_retrieval_policy_from_the_command_line(cli, tmp_path) -> None:
    from ami_robot.data import ShardWriter
    from tests.data.conftest import make_episode

    data = tmp_path / "data"
    with ShardWriter(data, {"kind": "synthetic"}, episodes_per_shard=2) as writer:
        for i in range(3):
            writer.add(make_episode(i, steps=6, size=16))
    memory = tmp_path / "mem" / "memory.safetensors"
    memory.parent.mkdir()
    out = cli("memory", "model=random", f"data_dir={data}", f"out={memory}",
              f"hydra.run.dir={tmp_path / 'm'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert memory.is_file() and json.loads((tmp_path / "mem" / "memory.json").read_text())["frames"] == 21
    locator = tmp_path / "mem" / "locator.safetensors"
    out = cli("locator", "model=random", f"data_dir={data}", f"val_dir={data}", f"out={locator}",
              "training.steps=3", "training.batch_size=4", "training.recoloured_copies=1",
              f"hydra.run.dir={tmp_path / 'l'}")
    assert out.returncode == 0, out.stderr[-2000:]
    card = json.loads((tmp_path / "mem" / "locator.json").read_text())
    assert card["train_frames"] == 21 and card["training"]["steps"] == 3 and "recoloured" in card
    run = tmp_path / "eval"
    out = cli("eval", *FAST, "policy=retrieval", f"policy.memory={memory}", f"policy.locator={locator}",
              "policy.neighbours=2", "tasks=[Grasp]", "episodes=1", "method=latent_retrieval",
              f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| Grasp | latent_retrieval | 1 |" in (run / "results.md").read_text()
    bad = cli("locator", "model=random", f"data_dir={data}", f"val_dir={data}", "training.stepz=3",
              f"hydra.run.dir={tmp_path / 'b'}")
    assert bad.returncode != 0 and "stepz" in bad.stderr
    missing = cli("memory", "model=random", f"data_dir={tmp_path / 'nowhere'}",
                  f"hydra.run.dir={tmp_path / 'x'}")
    assert missing.returncode == 2 and "no training shards" in missing.stderr
    # A random model has no checkpoint folder: without out= it must not write beside the shipped files.
    shipped = {f: f.stat().st_mtime_ns for f in shipped_checkpoint_dir().glob("*")}
    for app, data_args in (("memory", [f"data_dir={data}"]),
                           ("locator", [f"data_dir={data}", f"val_dir={data}"])):
        nowhere = cli(app, "model=random", *data_args, f"hydra.run.dir={tmp_path / app}")
        assert nowhere.returncode == 2, nowhere.stderr[-2000:]
        assert f"out=PATH/{app}.safetensors" in nowhere.stderr
    assert {f: f.stat().st_mtime_ns for f in shipped_checkpoint_dir().glob("*")} == shipped


def test_demo_plans_purely_in_latent_space_and_bench_keeps_the_retrieval_baseline(cli) -> None:
    demo = yaml.safe_load(cli("demo", "--cfg", "job").stdout)
    assert demo["policy"]["_target_"].endswith("LatentMPC") and demo["policy"]["goals"] == "subgoals"
    assert demo["planner"]["name"] == "icem" and demo["model"]["shipped"] == "two_view"
    assert demo["env"]["subgoals"] == "all" and demo["task"] == "PickPlace"
    bench = yaml.safe_load(cli("bench", "--cfg", "job").stdout)["policies"]["latent_retrieval"]
    assert bench["_target_"].endswith("RetrievalMPC") and bench["planner"]["name"] == "gradient"


def test_demo_runs_the_shipped_two_view_model_end_to_end(cli, tmp_path) -> None:
    run = tmp_path / "demo"
    out = cli("demo", "planner.samples=8", "planner.iterations=1", "planner.topk=2", "episodes=1",
              "batch_size=1", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-2000:]
    (record,) = _episodes(run / "episodes.jsonl")
    assert record["task"] == "PickPlace" and record["seed"] == 10_000
    assert record["method"] == "latent_icem_two_view" and len(record["plan_seconds"]) == record["steps"]
    assert list((run / "videos").glob("*.mp4")) and (run / "report.html").is_file()


def test_a_two_view_model_gets_its_wrist_view_without_asking(cli, tmp_path) -> None:
    import dataclasses

    from ami_robot.models.encoder import ENCODER_CONFIGS, VisionTransformer
    from ami_robot.models.predictor import PREDICTOR_CONFIGS, ACPredictor
    from ami_robot.weights import save_model

    folder = tmp_path / "two_view"
    save_model(VisionTransformer(ENCODER_CONFIGS["micro"]), folder / "encoder.safetensors")
    save_model(ACPredictor(dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2)),
               folder / "predictor.safetensors")
    run = tmp_path / "eval"
    common = ["eval", f"model.path={folder}", "env.image_size=64", "planner.samples=8",
              "planner.iterations=1", "planner.topk=2", "tasks=[Grasp]", "episodes=1",
              "policy.goals=subgoals"]
    out = cli(*common, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["env"]["views"] == ["exterior", "wrist"]
    one_view = cli(*common, "env.views=[exterior]", f"hydra.run.dir={tmp_path / 'one'}")
    assert one_view.returncode != 0
    assert "make the environment with views=('exterior', 'wrist')" in one_view.stderr
