"""Planning several episodes in one batch gives each the result it gets alone (same seeds)."""

from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.planners import make_config
from ami_robot.policies import LatentMPC
from ami_robot.world_model import WorldModel


def test_batched_episodes_equal_one_by_one(tmp_path) -> None:
    wm = WorldModel.random("micro", "micro", seed=0)
    planner = make_config("cem", samples=8, iterations=2, topk=2)

    def factory():
        return LatentMPC(wm, planner)

    seeds = [10_000, 10_001, 10_002]
    runs = {}
    for batch in (1, 3):
        log = EpisodeLog(tmp_path / f"b{batch}.jsonl", {"batch": batch})
        runs[batch] = run_episodes("Reach", seeds, factory, log, method="latent", batch_size=batch,
                                   env_kwargs={"image_size": 64}, progress=False)
    for alone, batched in zip(runs[1], runs[3], strict=True):
        assert alone["seed"] == batched["seed"] and alone["success"] == batched["success"]
        assert abs(alone["final_distance"] - batched["final_distance"]) < 1e-4
        assert alone["energies"] == batched["energies"]
