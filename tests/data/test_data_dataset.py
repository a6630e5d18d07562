"""ClipDataset and FrameDataset: shapes, frame skip, episode boundaries, both action modes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ami_robot.data import ClipDataset, FrameDataset, actions_from_states, compose_actions, load_trajectories


@pytest.mark.parametrize(("clip_len", "skip"), [(1, 1), (3, 1), (2, 3), (4, 2)])
def test_clip_shapes_and_frame_skip(dataset_dir: Path, clip_len: int, skip: int) -> None:
    ds = ClipDataset(dataset_dir, clip_len=clip_len, frame_skip=skip)
    span = clip_len * skip
    assert len(ds) == sum(max(0, 7 + i - span) for i in range(10))  # episode i has 7 + i frames
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (clip_len + 1, 8, 8, 3) and item["frames"].dtype == torch.uint8
        assert item["states"].shape == (clip_len + 1, 7) and item["states"].dtype == torch.float32
        assert item["actions"].shape == (clip_len, 7) and item["actions"].dtype == torch.float32
        red = item["frames"][:, 0, 0, 0].numpy().astype(int)  # the frame's index in its episode
        green = item["frames"][:, 0, 0, 1].numpy()  # its episode
        start = int(item["start"])
        assert list(red) == [start + skip * k for k in range(clip_len + 1)]
        assert (green == int(item["episode"])).all()  # never crosses an episode boundary
        np.testing.assert_array_equal(item["object_pos"][:, 0].numpy(), red)  # extras follow the frames


def test_state_actions_are_true_deltas(dataset_dir: Path, make_episode) -> None:
    ds = ClipDataset(dataset_dir, clip_len=3, frame_skip=2)
    for i in range(0, len(ds), 5):
        item = ds[i]
        ep = make_episode(int(item["episode"]), steps=6 + int(item["episode"]))
        s = int(item["start"])
        kept = ep.states[s : s + 7 : 2]
        np.testing.assert_allclose(item["actions"].numpy(), actions_from_states(kept), atol=1e-6)
        # ... which equal the composition of the commanded actions when the arm follows exactly.
        composed = compose_actions(ep.actions[s : s + 6], 2)
        np.testing.assert_allclose(item["actions"].numpy(), composed, atol=1e-5)


def test_commanded_actions_compose_the_skipped_steps(dataset_dir: Path, make_episode) -> None:
    ds = ClipDataset(dataset_dir, clip_len=2, frame_skip=3, action_mode="commanded")
    item = ds[len(ds) - 1]
    ep = make_episode(int(item["episode"]), steps=6 + int(item["episode"]))
    s = int(item["start"])
    np.testing.assert_allclose(item["actions"].numpy(), compose_actions(ep.actions[s : s + 6], 3), atol=1e-6)
    assert s + 6 == ep.steps  # the last clip ends on the episode's last frame


def test_batches_equal_items(dataset_dir: Path) -> None:
    ds = ClipDataset(dataset_dir, clip_len=2, frame_skip=2)
    batch = ds.get_batch([4, 0, 9])
    for j, i in enumerate([4, 0, 9]):
        for key, value in ds[i].items():
            assert torch.equal(batch[key][j], value)
    seen = torch.cat([b["start"] * 1000 + b["episode"] for b in ds.iter_batches(7, seed=1)])
    assert len(seen) == len(ds) and len(set(seen.tolist())) == len(ds)  # one epoch, each clip once
    loader = DataLoader(ds, batch_size=5, shuffle=True, num_workers=0)
    assert next(iter(loader))["frames"].shape == (5, 3, 8, 8, 3)


def test_frame_dataset(dataset_dir: Path) -> None:
    data = load_trajectories(dataset_dir)  # one load shared by two datasets
    single = FrameDataset(data)
    assert len(single) == data.num_frames == sum(7 + i for i in range(10))
    assert single[0].shape == (1, 8, 8, 3)
    pairs = FrameDataset(data, num_frames=2, frame_skip=3, stride=2)
    red = pairs.get_batch(np.arange(len(pairs)))[:, :, 0, 0, 0].int()  # (B, 2)
    assert (red[:, 1] - red[:, 0] == 3).all() and (red[:, 0] % 2 == 0).all()
    assert sum(b.shape[0] for b in single.iter_batches(16, drop_last=True)) == len(single) // 16 * 16


def test_episode_filter_and_too_long_clips(dataset_dir: Path) -> None:
    reach = load_trajectories(dataset_dir, episode_filter=lambda m: m["task"] == "Reach")
    assert list(reach.episode_ids) == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="no episode holds a window of 17 frames"):
        ClipDataset(dataset_dir, clip_len=16)
    with pytest.raises(ValueError, match="action_mode"):
        ClipDataset(dataset_dir, clip_len=2, action_mode="deltas")
