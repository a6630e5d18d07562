"""Several camera views per frame: each encoded alone, tokens view-major, the predictor's rows stacked."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ami_robot.models import PREDICTOR_CONFIGS, ACPredictor, split_views
from ami_robot.world_model import WorldModel


def two_view_model() -> WorldModel:
    pred = dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=2)
    return WorldModel.random("micro", pred, seed=0)


def test_split_views_cuts_stacked_squares() -> None:
    frames = torch.arange(2 * 8 * 4 * 3).reshape(2, 8, 4, 3)
    views = split_views(frames, 2)
    assert views.shape == (4, 4, 4, 3)
    assert torch.equal(views[1], frames[0, 4:]) and torch.equal(views[2], frames[1, :4])
    assert split_views(frames, 1) is frames
    with pytest.raises(ValueError, match="expected height 2 x width"):
        split_views(frames[:, :6], 2)


def test_two_view_encode_is_each_view_encoded_alone() -> None:
    wm = two_view_model()
    rng = np.random.default_rng(0)
    exterior, wrist = (rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8) for _ in range(2))
    z = wm.encode(np.concatenate([exterior, wrist], axis=1))  # (3, 128, 64, 3) stacked
    single = WorldModel(wm.encoder, ACPredictor(PREDICTOR_CONFIGS["micro"]))
    assert wm.views == 2 and z.shape == (3, 128, 96)
    torch.testing.assert_close(z[:, :64], single.encode(exterior))
    torch.testing.assert_close(z[:, 64:], single.encode(wrist))
    with pytest.raises(ValueError, match="stack 2 squares"):
        wm.encode(exterior)


def test_predictor_places_the_second_view_below_the_first() -> None:
    one = PREDICTOR_CONFIGS["micro"]
    two = ACPredictor(dataclasses.replace(one, views=2))
    assert two.config.patch_tokens == 2 * one.grid**2
    cos, _ = two._rope(0, 1, torch.device("cpu"), torch.float32)  # (2 + 128, hd)
    d = 16  # segment dims at head dim 48: time 0..15, height 16..31, width 32..47
    height = cos[2:, d:2 * d]
    single_view = ACPredictor(one)._rope(0, 1, torch.device("cpu"), torch.float32)[0]
    # view 0 is placed as a single view is; view 1's row r as row 8 + r
    assert not torch.allclose(height[:64], height[64:])
    expected = torch.cos(torch.arange(8, 16).repeat_interleave(8)[:, None].double()
                         * (1.0 / 10000 ** (torch.arange(8).double() / 8))).repeat(1, 2).float()
    torch.testing.assert_close(height[64:], expected)
    torch.testing.assert_close(height[:64], single_view[2:, d:2 * d])
    z = torch.randn(2, 1, 128, 96)
    out = two(z, torch.zeros(2, 1, 7), torch.zeros(2, 1, 7))
    assert out.shape == (2, 1, 128, 96)
    with pytest.raises(ValueError, match=r"2 view\(s\) x 8\^2 = 128"):
        two(z[:, :, :64], torch.zeros(2, 1, 7), torch.zeros(2, 1, 7))


def test_views_must_be_positive() -> None:
    with pytest.raises(ValueError, match="views must be >= 1"):
        dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=0)
