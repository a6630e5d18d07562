"""LeRobotDataset in and out through the `lerobot` library (the `[lerobot]` extra; skipped without it).

Our episodes go out as a LeRobotDataset v3 folder and come back as the same Trajectories: states and
actions exactly, frames within what the video codec loses; the trainers read the folder as they read
shards; a dataset of other shapes is refused with the shapes it needed.
"""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lerobot")

from ami_robot.data import ClipDataset, CollectConfig, Episode, LeRobotError, collect, load_trajectories  # noqa: E402
from ami_robot.data.lerobot_io import FPS, SIDECAR, write_lerobot  # noqa: E402

SIZE = 64  # px: the model's resolution (and libsvtav1's comfortable minimum)


def _episode(ep_id: int, steps: int, make_episode, views: int = 1) -> Episode:
    """conftest's episode (known states and actions) with a moving square: codecs keep edges, not noise."""
    ep = make_episode(ep_id, steps, size=SIZE)
    frames = np.full((steps + 1, SIZE, SIZE, 3), 40, np.uint8)
    for k in range(steps + 1):
        r, c = 8 + 3 * k % 40, 8 + (5 * k + 7 * ep_id) % 40
        frames[k, r : r + 16, c : c + 16] = (220, 60 + 10 * (ep_id % 8), 30)
    if views == 2:  # the second view: the first upside down, stacked below it (envs.stack_views)
        frames = np.concatenate([frames, frames[:, ::-1]], axis=1)  # (L+1, 128, 64, 3)
    return Episode(id=ep.id, frames=frames, states=ep.states, actions=ep.actions, meta=ep.meta)


def _check_round_trip(episodes: list[Episode], root: Path, views: int) -> None:
    data = load_trajectories(root)
    assert list(data.episode_ids) == [ep.id for ep in episodes]
    assert data.views == views and data.frames.dtype == np.uint8
    for e, ep in enumerate(episodes):
        rows = slice(data.starts[e], data.starts[e] + data.lengths[e])
        np.testing.assert_array_equal(data.states[rows], ep.states)
        np.testing.assert_array_equal(data.actions[rows][:-1], ep.actions)
        assert not data.actions[rows][-1].any()  # no action follows the last frame
        error = np.abs(data.frames[rows].astype(np.int16) - ep.frames.astype(np.int16))
        assert error.mean() < 4 and np.percentile(error, 99) < 40, (error.mean(), error.max())
        assert data.meta[e] == ep.meta
    used = data.usage()["shards_used"]  # the files a model card names, each with its sha256
    assert {u["file"].split("/")[0] for u in used} == {"data", "videos"}
    assert all(len(u["sha256"]) == 64 for u in used)


@pytest.mark.filterwarnings("ignore:The video decoding and encoding capabilities")  # lerobot's PyAV reader
def test_one_view_episodes_round_trip(make_episode, tmp_path: Path) -> None:
    episodes = [_episode(i, 5 + i, make_episode) for i in (3, 4, 7)]
    root = write_lerobot(tmp_path / "lr", episodes, collection={"kind": "synthetic"})
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS == 4
    assert info["total_episodes"] == 3 and info["total_frames"] == sum(len(ep.frames) for ep in episodes)
    features = info["features"]
    assert features["observation.images.exterior"]["dtype"] == "video"
    assert features["observation.images.exterior"]["shape"] == [SIZE, SIZE, 3]
    assert features["observation.state"]["shape"] == features["action"]["shape"] == [7]
    assert list(root.glob("data/*/*.parquet"))
    assert list(root.glob("videos/observation.images.exterior/*/*.mp4"))
    assert (root / SIDECAR).is_file() and not (root / "images").exists()
    _check_round_trip(episodes, root, views=1)
    # the lerobot library reads it as one of its own: a frame, its state and the action taken there
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    second = len(episodes[0].frames) + 1  # the second frame of the second episode (id 4)
    item = LeRobotDataset("local/lr", root=root, video_backend="pyav")[second]
    np.testing.assert_array_equal(item["observation.state"].numpy(), episodes[1].states[1])
    np.testing.assert_array_equal(item["action"].numpy(), episodes[1].actions[1])
    assert item["task"] == episodes[1].meta["task"]
    assert tuple(item["observation.images.exterior"].shape) == (3, SIZE, SIZE)


def test_two_view_episodes_round_trip(make_episode, tmp_path: Path) -> None:
    episodes = [_episode(i, 6, make_episode, views=2) for i in range(2)]
    root = write_lerobot(tmp_path / "lr2", episodes, views=("exterior", "wrist"))
    features = json.loads((root / "meta" / "info.json").read_text())["features"]
    assert features["observation.images.wrist"]["shape"] == [SIZE, SIZE, 3]
    _check_round_trip(episodes, root, views=2)


def _foreign(root: Path, camera: str, image: tuple[int, int], dim: int, episodes: int = 1) -> Path:
    """A LeRobotDataset recorded by lerobot alone (no meta/ami_robot.json), at 10 fps."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {camera: {"dtype": "video", "shape": (*image, 3), "names": ["height", "width", "channels"]},
                "observation.state": {"dtype": "float32", "shape": (dim,), "names": None},
                "action": {"dtype": "float32", "shape": (dim,), "names": None}}
    ds = LeRobotDataset.create(f"local/{root.name}", fps=10, features=features, root=root)
    for e in range(episodes):
        for k in range(4):
            ds.add_frame({camera: np.full((*image, 3), 30 * k, np.uint8), "task": f"task {e}",
                          "observation.state": np.full(dim, k + 10 * e, np.float32),
                          "action": np.full(dim, -k, np.float32)})
        ds.save_episode(parallel_encoding=False)
    ds.finalize()
    return root


def test_any_lerobot_dataset_of_7d_state_and_action_is_read(tmp_path: Path) -> None:
    data = load_trajectories(_foreign(tmp_path / "front", "observation.images.front", (SIZE, SIZE), 7, 2))
    assert list(data.episode_ids) == [0, 1] and list(data.lengths) == [4, 4] and data.views == 1
    assert [m["task"] for m in data.meta] == ["task 0", "task 1"]
    np.testing.assert_array_equal(data.states[4:, 0], [10, 11, 12, 13])
    np.testing.assert_array_equal(data.actions[:4, 0], [0, -1, -2, 0])  # zero after the last frame
    assert np.abs(data.frames[:4, 10, 10, 0].astype(int) - [0, 30, 60, 90]).max() <= 4


def test_a_dataset_of_other_shapes_is_refused(tmp_path: Path) -> None:
    _foreign(tmp_path / "other", "observation.images.top", (48, 64), 6)
    with pytest.raises(LeRobotError) as refused:
        load_trajectories(tmp_path / "other")
    message = str(refused.value)
    assert "observation.state has shape (6,), not (7,)" in message and "action has shape (6,)" in message
    assert "not square" in message and "(48, 64, 3)" in message  # what it found
    assert "observation.images.<view> (S, S, 3)" in message  # and what it expected


def test_collected_episodes_go_out_as_lerobot_and_back(tmp_path: Path) -> None:
    """`ami-robot collect format=lerobot` on the real environments, read back as training data."""
    cfg = CollectConfig(out_dir=str(tmp_path / "play"), episodes=2, tasks=("Reach",), episode_steps=3,
                        image_size=SIZE, num_workers=0, env_kwargs={"views": ["exterior", "wrist"]})
    stats = collect(cfg, out_format="lerobot")
    assert stats.collected == 2
    data = load_trajectories(cfg.out_dir)
    assert list(data.episode_ids) == [0, 1] and list(data.lengths) == [4, 4] and data.views == 2
    assert data.frames.shape[1:] == (2 * SIZE, SIZE, 3)
    assert [m["task"] for m in data.meta] == ["Reach", "Reach"] and "policy" in data.meta[0]
    with pytest.raises(LeRobotError, match="no resume"):
        collect(cfg, out_format="lerobot")


def test_the_trainers_read_a_lerobot_folder(make_episode, tmp_path: Path) -> None:
    import torch

    from ami_robot.models.encoder import ENCODER_CONFIGS, VisionTransformer
    from ami_robot.train.pretrain import PretrainConfig, pretrain_encoder
    from ami_robot.train.train_predictor import PredictorTrainConfig, train_predictor

    root = write_lerobot(tmp_path / "lr", [_episode(i, 8, make_episode) for i in range(6)])
    assert len(ClipDataset(root, clip_len=3)) == 6 * (9 - 3)
    torch.manual_seed(0)
    encoder = VisionTransformer(ENCODER_CONFIGS["micro"])
    cfg = PredictorTrainConfig(predictor="micro", clip_len=3, rollout_steps=2, batch_size=4, steps=2,
                               warmup_steps=1, checkpoint_every=2, log_every=1, holdout_every=3)
    run = train_predictor(cfg, root, encoder, tmp_path / "predictor", device="cpu", progress=False)
    assert run["frames"] == 6 * 9 and run["data"]["episodes_used"] == 6
    assert all(torch.isfinite(p).all() for p in run["predictor"].parameters())
    pre = PretrainConfig(encoder="micro", predictor_dim=48, predictor_depth=1, predictor_heads=1,
                         batch_size=4, steps=2, warmup_steps=1, checkpoint_every=2, log_every=1)
    out = pretrain_encoder(pre, root, tmp_path / "encoder", device="cpu", progress=False)
    assert out["steps"] == 2 and out["data"]["dir"] == str(root)
