"""The object locator (policies/retrieval/locator.py, trained by train/locator.py) and the
retrieval policy's pick-and-place from one goal image, on synthetic frames whose object positions
are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_memory import assert_refused_when_damaged
from test_memory import trajectories as memory_trajectories

from ami_robot.data.dataset import Trajectories
from ami_robot.models.locator import recolour
from ami_robot.planners import make_config
from ami_robot.policies import RetrievalMPC
from ami_robot.policies.retrieval import FrameMemory, Locator
from ami_robot.train.locator import LocatorTrainConfig, train_locator
from ami_robot.world_model import WorldModel


def square_frames(xy: np.ndarray, size: int = 64) -> np.ndarray:
    """Grey frames with a red 12-pixel square whose corner moves with xy in [0, 1]^2."""
    frames = np.full((len(xy), size, size, 3), 128, np.uint8)
    for frame, (x, y) in zip(frames, xy, strict=True):
        r, c = int(4 + x * (size - 20)), int(4 + y * (size - 20))
        frame[r:r + 12, c:c + 12] = (220, 30, 30)
    return frames


def trajectories(episodes: int = 8, length: int = 16, seed: int = 0) -> Trajectories:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1, (episodes * length, 2))
    states = np.zeros((len(xy), 7), np.float32)
    states[:, :2] = 0.4 + 0.2 * xy[::-1]  # the TCP somewhere, unrelated to the picture
    states[:, 2] = 0.1
    object_pos = np.stack([0.4 + 0.2 * xy[:, 0], -0.1 + 0.2 * xy[:, 1], np.full(len(xy), 0.02)], 1)
    lengths = np.full(episodes, length)
    return Trajectories(frames=square_frames(xy), states=states, actions=np.zeros_like(states),
                        starts=np.arange(episodes) * length, lengths=lengths, episode_ids=np.arange(episodes),
                        meta=[{"task": "x"}] * episodes, extras={"object_pos": object_pos.astype(np.float32)})


@pytest.fixture(scope="module")
def world_model() -> WorldModel:
    return WorldModel.random("micro", "micro", image_size=64, seed=0)


@pytest.fixture(scope="module")
def trained(world_model):
    cfg = LocatorTrainConfig(steps=300, batch_size=64, lr=3e-3, recoloured_copies=1)
    return train_locator(world_model, trajectories(), trajectories(episodes=4, seed=1), cfg, progress=False)


def test_recolour_repaints_the_object_and_keeps_the_greys() -> None:
    frames = torch.from_numpy(square_frames(np.array([[0.5, 0.5]]))).repeat(8, 1, 1, 1)
    frames[:, :4, :4] = 60  # a dark grey corner (a shadow)
    out = recolour(frames, torch.Generator().manual_seed(0))
    square = out[:, 30, 30].float()  # the red square, in eight random colours
    assert float(square.std(0).min()) > 20
    assert (square.max(1).values == 220).all()  # its shading (brightest channel) kept
    untouched = torch.ones(64, 64, dtype=torch.bool)
    untouched[28 - 4:28 + 16, 28 - 4:28 + 16] = False  # around the square
    assert torch.equal(out[:, untouched], frames[:, untouched])  # greys stay as they were
    assert torch.equal(out, recolour(frames, torch.Generator().manual_seed(0)))


def test_the_locator_learns_where_the_object_is(trained, world_model) -> None:
    locator, report = trained
    # a guess at the mean position errs by ~8 cm on this layout; the probe must read the square
    assert report["recorded"]["object_xy_cm_median"] < 4.0
    assert report["recoloured"]["object_xy_cm_median"] < 6.0
    assert report["train_frames"] == 128 and report["val_frames"] == 64
    found = locator.locate(world_model.encode(square_frames(np.array([[0.1, 0.1], [0.9, 0.9]]))))
    assert found.shape == (2, 6)
    assert found[1, 0] - found[0, 0] > 0.08 and found[1, 1] - found[0, 1] > 0.08


def test_save_load_and_refusals(trained, world_model, tmp_path) -> None:
    locator, report = trained
    path = locator.save(tmp_path / "locator.safetensors", meta=report)
    loaded = Locator.load(path)
    frames = square_frames(np.array([[0.3, 0.6]]))
    expected = locator.locate(world_model.encode(frames))
    np.testing.assert_allclose(loaded.locate(world_model.encode(frames)), expected, atol=1e-5)
    assert loaded.card["recorded"] == report["recorded"]
    assert_refused_when_damaged(loaded, world_model, path, Locator.load, "ami-robot locator")
    with pytest.raises(ValueError, match="object positions"):
        data = trajectories()
        data.extras.clear()
        train_locator(world_model, data, data, LocatorTrainConfig(steps=1), progress=False)


class FixedLocator:
    """Says the object is at `now` in the first image and at `there` in the second."""

    def __init__(self, now, there) -> None:
        self.rows = np.array([[*now, 0.5, 0.0, 0.2], [*there, 0.5, 0.0, 0.2]], np.float32)

    def locate(self, z, z_copies=None):
        return self.rows[: len(z)]

    def check(self, world_model) -> None:
        pass


def test_a_goal_image_with_the_object_elsewhere_becomes_a_pick_and_place(world_model) -> None:

    data = memory_trajectories()
    memory = FrameMemory.build(world_model, data, components=8)
    planner = make_config("cem", samples=8, iterations=1, topk=2)
    image, goal = data.frames[0], data.frames[6 + 4]  # the goal's neighbour holds nothing: not a grasp

    def policy(now, there):
        return RetrievalMPC(world_model, memory, planner=planner, neighbours=1, locate=True,
                            locator=FixedLocator(now, there))

    moved = policy((0.50, 0.0, 0.02), (0.50, 0.15, 0.02)).waypoints([goal], closed=False, pixels=image)
    names = [w.name for w, _ in moved]
    assert names == ["over the object", "go down", "close", "lift", "carry", "put down", "open",
                     "goal image 0"]
    over, down, close, lift, carry, put_down, release, up = (w for w, _ in moved)
    np.testing.assert_allclose(over.xyz[:2], [0.50, 0.0])
    np.testing.assert_allclose(carry.xyz[:2], [0.50, 0.15])
    grasp_height = memory.grasp_height()  # the usual height of the training episodes' grasps
    np.testing.assert_allclose(put_down.xyz, [0.50, 0.15, grasp_height])
    assert down.xyz[2] == pytest.approx(grasp_height) and close.gripper == carry.gripper == 1.0
    assert release.gripper == 0.0 and up.image and up.hold_xy and up.gripper == 0.0
    # the object already where the goal shows it, or lifted in the goal: no carrying
    stay = policy((0.50, 0.0, 0.02), (0.52, 0.01, 0.02)).waypoints([goal], closed=False, pixels=image)
    lifted = policy((0.50, 0.0, 0.02), (0.50, 0.15, 0.10)).waypoints([goal], closed=False, pixels=image)
    assert [w.name for w, _ in stay] == [w.name for w, _ in lifted] == ["goal image 0"]
    with pytest.raises(FileNotFoundError, match="ami-robot locator"):
        RetrievalMPC(world_model, memory, locate=True, locator="/nonexistent/locator.safetensors")


class ReadingsLocator:
    """The first call (the policy's reset: the image now, the goal image) says (`readings[0]`,
    `there`); every later call reads each image as the next of `readings`."""

    def __init__(self, readings, there) -> None:
        self.readings, self.there, self.calls = [np.array([*r, 0.02]) for r in readings], there, 0

    def locate(self, z, z_copies=None):
        if self.calls == 0:
            rows = [self.readings[0], np.array([*self.there, 0.02])]
        else:
            rows = [self.readings[min(self.calls + k, len(self.readings) - 1)] for k in range(len(z))]
        self.calls += 1
        return np.array([[*r, 0.5, 0.0, 0.2] for r in rows], np.float32)

    def check(self, world_model) -> None:
        pass


def test_carrying_rereads_the_object_and_tries_again_after_closing_on_nothing(world_model) -> None:
    data = memory_trajectories()
    memory = FrameMemory.build(world_model, data, components=8)
    image, goal = data.frames[0], data.frames[6 + 4]
    readings = [(0.50, 0.0), (0.54, 0.0), (0.52, 0.02), (0.40, -0.05)]

    def policy(**kwargs):
        locator = ReadingsLocator(readings, there=(0.50, 0.15))
        planner = make_config("cem", samples=8, iterations=1, topk=2)
        policy = RetrievalMPC(world_model, memory, planner=planner, neighbours=1, locate=True,
                              locator=locator, **kwargs)
        policy.reset_batch([{"pixels": image, "state": home}], [{"goal_pixels": goal}])
        return policy

    home = np.array([0.45, 0.0, 0.15, 0, 0, 0, 0], np.float32)
    reread = policy()
    reread.act_batch([{"pixels": image, "state": home}])  # the first frame, read again
    np.testing.assert_allclose(reread.episodes[0].target[:2], [0.54, 0.0])
    there_already = np.r_[reread.episodes[0].target, 0, 0, 0, 0].astype(np.float32)
    reread.act_batch([{"pixels": image, "state": there_already}])  # a second frame before going down
    assert reread.phase(0).name == "over the object"
    np.testing.assert_allclose(reread.episodes[0].target[:2], [0.53, 0.01])  # the mean of the two
    over = reread.episodes[0].target.copy()
    reread.act_batch([{"pixels": image, "state": np.r_[over, 0, 0, 0, 0].astype(np.float32)}])
    assert reread.phase(0).name == "go down"  # reached: no more readings, straight down at their mean
    np.testing.assert_allclose(reread.episodes[0].target[:2], [0.53, 0.01])
    np.testing.assert_allclose(reread.episodes[0].phases[4][0].xyz[:2], [0.50, 0.15])  # still carried there

    # lifting with the fingers closed all the way holds nothing: open, go up, read again, aim anew
    lift = [w.name for w, _ in reread.episodes[0].phases].index("lift")
    reread.episodes[0].index = lift
    empty = np.array([0.53, 0.01, 0.05, 0, 0, 0, 1.0], np.float32)
    reread.act_batch([{"pixels": image, "state": empty}])
    assert [w.name for w, _ in reread.episodes[0].phases] == [
        "open and up", "over the object", "go down", "close", "lift", "carry", "put down", "open",
        "goal image 0"]
    assert reread.phase(0).name == "open and up" and reread.phase(0).gripper == 0.0
    assert reread.episodes[0].retries_left == 1 and reread.episodes[0].readings == []
    np.testing.assert_allclose(reread.episodes[0].target[:2], [0.53, 0.01])  # straight up from where it shut
    up = np.r_[reread.episodes[0].target, 0, 0, 0, 0].astype(np.float32)
    reread.act_batch([{"pixels": image, "state": up}])
    assert reread.phase(0).name == "over the object"
    np.testing.assert_allclose(reread.episodes[0].target[:2], [0.40, -0.05])  # the new reading alone

    for phase in ("carry", "put down"):  # a cube dropped on the way is a miss as well
        dropped = policy()
        dropped.episodes[0].index = [w.name for w, _ in dropped.episodes[0].phases].index(phase)
        dropped.act_batch([{"pixels": image, "state": empty}])
        assert dropped.phase(0).name == "open and up" and dropped.episodes[0].retries_left == 1

    blind = policy(reread=False)  # no rereading: a retry aims where the dropped grasp aimed
    blind.episodes[0].index = [w.name for w, _ in blind.episodes[0].phases].index("carry")
    blind.act_batch([{"pixels": image, "state": empty}])
    np.testing.assert_allclose(blind.episodes[0].phases[1][0].xyz[:2], [0.50, 0.0])

    # retries=0, reread=False: the pick goes down where the first image said, and never again
    once = policy(reread=False, retries=0)
    once.act_batch([{"pixels": image, "state": home}])
    np.testing.assert_allclose(once.episodes[0].target[:2], [0.50, 0.0])
    once.episodes[0].index = lift
    once.act_batch([{"pixels": image, "state": empty}])
    assert once.phase(0).name == "lift" and len(once.episodes[0].phases) == 8
    with pytest.raises(ValueError, match="retries"):
        RetrievalMPC(world_model, memory, retries=-1)
