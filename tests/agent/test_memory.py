"""The memory of training frames and the retrieval policy built on it (ami_robot.policies.retrieval),
on synthetic episodes whose gripper histories are known."""

from __future__ import annotations

import numpy as np
import pytest

from ami_robot.data.dataset import Trajectories
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.planners import make_config
from ami_robot.policies import RetrievalMPC
from ami_robot.policies.retrieval import FrameMemory
from ami_robot.weights import save_model
from ami_robot.world_model import WorldModel

# Gripper (0 open .. 1 closed) and TCP height per frame of three episodes.
GRASP = ([0.0, 0.0, 0.0, 0.45, 0.45, 0.45], [0.10, 0.05, 0.02, 0.02, 0.06, 0.10])  # fingers stop on a cube
AIR = ([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0.10, 0.08, 0.06, 0.06, 0.08, 0.10])  # closes on nothing
RELEASE = ([0.45, 0.45, 0.45, 0.0, 0.0, 0.0], [0.10, 0.06, 0.03, 0.03, 0.07, 0.10])  # puts it down


def trajectories(size: int = 64) -> Trajectories:
    episodes = [GRASP, AIR, RELEASE]
    rng = np.random.default_rng(0)
    frames, states = [], []
    for grip, z in episodes:
        n = len(grip)
        frames.append(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))  # every frame distinct
        s = np.zeros((n, 7), np.float32)
        s[:, 0], s[:, 2], s[:, 6] = 0.5, z, grip
        states.append(s)
    lengths = np.array([len(g) for g, _ in episodes])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frames_all, states_all = np.concatenate(frames), np.concatenate(states)
    return Trajectories(frames=frames_all, states=states_all, actions=np.zeros_like(states_all),
                        starts=starts, lengths=lengths, episode_ids=np.arange(3), meta=[{"task": "x"}] * 3)


@pytest.fixture(scope="module")
def world_model() -> WorldModel:
    return WorldModel.random("micro", "micro", image_size=64, seed=0)


@pytest.fixture(scope="module")
def data() -> Trajectories:
    return trajectories()


@pytest.fixture(scope="module")
def memory(world_model, data) -> FrameMemory:
    return FrameMemory.build(world_model, data, components=8)


def test_grasps_and_releases_are_read_from_the_robot_alone(memory) -> None:
    # The grasp: the last open frame before the fingers closed and stopped short (frame 2, z 2 cm).
    assert memory.last_change(4, to_closed=True) == 2 and memory.states[2, 2] == pytest.approx(0.02)
    assert memory.last_change(1, to_closed=True) is None  # not closed yet at frame 1
    assert memory.last_change(6 + 5, to_closed=True) is None  # closing on air is not a grasp
    assert memory.last_change(12 + 4, to_closed=False) == 12 + 2  # the release, from holding
    assert memory.last_change(6 + 5, to_closed=False) is None
    assert memory.grasp_height() == pytest.approx(0.02)


def test_retrieval_finds_the_frame_and_counts_what_the_neighbours_hold(memory, data, world_model) -> None:
    found = memory.retrieve(world_model.encode(data.frames[4][None])[0], k=1)
    assert found.frames.tolist() == [4] and found.distances[0] < 1e-4  # a stored frame finds itself
    assert (found.holding, found.open) == (1, 0)
    np.testing.assert_allclose(found.grasp_xyz, data.states[2, :3])
    assert found.release_xyz is None
    air = memory.retrieve(world_model.encode(data.frames[6 + 4][None])[0], k=1)
    assert (air.holding, air.open, air.grasp_xyz) == (0, 0, None)  # closed, but on nothing


def test_save_load_round_trip_and_bad_files(memory, world_model, tmp_path) -> None:
    path = memory.save(tmp_path / "memory.safetensors", meta={"data_dir": "synthetic"})
    loaded = FrameMemory.load(path)
    np.testing.assert_array_equal(loaded.states, memory.states)
    np.testing.assert_allclose(loaded.keys.numpy(), memory.keys.numpy(), atol=1e-2)  # stored as fp16
    assert loaded.meta["data_dir"] == "synthetic" and loaded.meta["frames"] == 18
    assert_refused_when_damaged(loaded, world_model, path, FrameMemory.load, "ami-robot memory")


def test_the_policy_reads_the_memory_beside_the_model_it_was_given(memory, world_model, tmp_path) -> None:
    # A model trained into its own folder (`reproduce reproduce.export_dir=...`, then `model.path=`)
    # brings its own memory; the shipped one, made by another encoder, would be refused.
    save_model(world_model.encoder, tmp_path / "encoder.safetensors")
    save_model(world_model.predictor, tmp_path / "predictor.safetensors")
    loaded = WorldModel.from_checkpoint(tmp_path)
    assert loaded.checkpoint_dir == tmp_path
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "memory.safetensors")):
        RetrievalMPC(loaded)
    memory.save(tmp_path / "memory.safetensors", meta={"data_dir": "synthetic"})
    policy = RetrievalMPC(loaded)
    assert policy.memory.meta["data_dir"] == "synthetic"
    np.testing.assert_array_equal(policy.memory.states, memory.states)


def assert_refused_when_damaged(loaded, world_model, path, load, command: str) -> None:
    """A saved artefact (memory, locator) refuses another encoder, a changed file and a lost card."""
    loaded.check(world_model)  # the same encoder: accepted
    with pytest.raises(ValueError, match="different encoder"):
        loaded.check(WorldModel.random("micro", "micro", image_size=64, seed=1))
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256"):
        load(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match=command):
        load(path)


def _names(phases) -> list[str]:
    return [w.name for w, _ in phases]


def test_phases_from_the_goal_images(memory, data, world_model) -> None:
    policy = RetrievalMPC(world_model, memory, planner=make_config("cem", samples=8, iterations=1, topk=2),
                          neighbours=1)
    holding, air = data.frames[4], data.frames[6 + 4]
    grasp = policy.waypoints([holding], closed=False)
    assert _names(grasp) == ["line up", "go down", "close", "goal image 0"]
    line_up, down, close, goal = (w for w, _ in grasp)
    assert line_up.image and np.isnan(line_up.xyz[:2]).all() and line_up.xyz[2] == pytest.approx(0.06)
    assert down.xyz[2] == pytest.approx(0.02) and down.hold_xy and down.gripper == 0.0
    assert close.gripper == 1.0 and goal.gripper == 1.0 and goal.hold_xy
    assert _names(policy.waypoints([air], closed=False)) == ["goal image 0"]  # nothing held: no grasp
    assert _names(policy.waypoints([holding], closed=True)) == ["goal image 0"]  # already holding
    place = policy.waypoints([air, holding, air], closed=False)  # several: pick first, place last
    assert _names(place) == ["line up", "go down", "close", "goal image 0", "goal image 1",
                             "line up", "go down", "open", "goal image 2"]
    assert [i for _, i in place] == [0, 0, 0, 0, 1, 2, 2, 2, 2]
    assert place[6][0].xyz[2] == pytest.approx(0.02)  # released at the height it grasped from
    no_model = RetrievalMPC(world_model, memory, neighbours=1, align="memory")
    ablation = no_model.waypoints([holding], closed=False)
    assert _names(ablation) == _names(grasp) and not any(w.image for w, _ in ablation)
    np.testing.assert_allclose(ablation[0][0].xyz, data.states[4, :3])  # the neighbour TCP, no latent term


def test_the_policy_plays_batches_of_episodes(memory, world_model, tmp_path) -> None:
    planner = make_config("cem", samples=8, iterations=1, topk=2)

    def factory():
        return RetrievalMPC(world_model, memory, planner=planner, neighbours=1, align_steps=2)

    log = EpisodeLog(tmp_path / "episodes.jsonl", {"test": True})
    records = run_episodes("Grasp", [10_000, 10_001], factory, log, method="retrieval", batch_size=2,
                           env_kwargs={"image_size": 64}, progress=False)
    assert [r["steps"] for r in records] == [40, 40]
    assert all(len(r["plan_seconds"]) == 40 for r in records)


def test_bad_settings_are_refused(memory, world_model) -> None:
    with pytest.raises(ValueError, match="neighbours"):
        RetrievalMPC(world_model, memory, neighbours=0)
    with pytest.raises(ValueError, match="align"):
        RetrievalMPC(world_model, memory, align="oracle")
    with pytest.raises(ValueError, match="different encoder"):
        RetrievalMPC(WorldModel.random("micro", "micro", image_size=64, seed=3), memory)
