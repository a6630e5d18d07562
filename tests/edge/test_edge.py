"""The exported graphs under onnxruntime equal the torch model to 1e-4, one view and two, any horizon.

Small random models (micro), exported once per module with their int8 copies. Every comparison
feeds both backends the same latents and actions, so a difference is the graphs' alone.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ami_robot.agent import LatentCostModel, MPCAgent
from ami_robot.edge import ExportConfig, MissingExtraError, OnnxWorldModel, export_onnx
from ami_robot.models import PREDICTOR_CONFIGS
from ami_robot.planners import CEMConfig
from ami_robot.world_model import WorldModel

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4


def model(views: int, residual: bool = False) -> WorldModel:
    predictor = dataclasses.replace(PREDICTOR_CONFIGS["micro"], views=views, residual=residual)
    wm = WorldModel.random("micro", predictor, seed=views)
    if residual:  # its output projection starts at zero; a trained one is not
        weight = wm.predictor.predictor_proj.weight
        torch.nn.init.normal_(weight, std=0.05, generator=torch.Generator().manual_seed(0))
    return wm


@pytest.fixture(scope="module", params=[(1, False), (2, False), (2, True)],
                ids=["one_view", "two_views", "two_views_residual"])
def exported(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldModel, Path]:
    wm = model(*request.param)
    folder = tmp_path_factory.mktemp(f"onnx_{request.param[0]}_{request.param[1]}")
    export_onnx(wm, folder, ExportConfig(int8=True, check_rows=4, check_horizon=2), {"kind": "random"})
    return wm, folder


def latents(wm: WorldModel, rows: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (rows, wm.views * wm.image_size, wm.image_size, 3), dtype=np.uint8)
    return wm.encode(frames)  # (rows, N, D)


def test_encoder_latents_equal(exported) -> None:
    wm, folder = exported
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, wm.views * 80, 80, 3), dtype=np.uint8)  # resized as torch resizes
    z = OnnxWorldModel(folder).encode(frames)
    assert z.shape == (5, wm.views * 64, 96)
    torch.testing.assert_close(z, wm.encode(frames), rtol=0, atol=TOL)


@pytest.mark.parametrize("horizon", [1, 3])
def test_planning_cost_equal_over_candidates(exported, horizon: int) -> None:
    """Two episodes of 6 candidates each (rows episode-major), as the latent policy plans a batch."""
    wm, folder = exported
    z = latents(wm, 4)
    context, goal = z[:2, None], z[2:]  # (E, 1, N, D), (E, N, D)
    state = 0.1 * torch.randn(2, 1, 7, generator=torch.Generator().manual_seed(0))
    actions = 0.05 * torch.randn(12, horizon, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = wm.planning_cost(context, state, goal, horizon)(actions)
    cost = OnnxWorldModel(folder).planning_cost(context, state, goal, horizon)
    torch.testing.assert_close(cost(actions), expected, rtol=0, atol=TOL)
    torch.testing.assert_close(cost(actions[:6].repeat(2, 1, 1))[:6], expected[:6], rtol=0, atol=TOL)


def test_rollout_equal_with_two_context_frames(exported) -> None:
    """Context frames beyond the first go through the step graph one at a time (its keys and values)."""
    wm, folder = exported
    context = latents(wm, 2)[None]  # (1, C=2, N, D)
    states = torch.tensor([[[0.4, 0.0, 0.3, 3.1, 0.0, 0.1, 0.0], [0.42, 0.01, 0.3, 3.1, 0.0, 0.12, 0.2]]])
    actions = 0.05 * torch.randn(3, 2, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = wm.rollout(context, states, actions)
    got = OnnxWorldModel(folder).rollout(context, states, actions)
    torch.testing.assert_close(got, expected, rtol=0, atol=TOL)


def test_the_latent_policy_plans_the_same_through_onnx(exported) -> None:
    """MPCAgent over LatentCostModel, unchanged: same seed, same CEM samples, same plan."""
    wm, folder = exported
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (wm.views * 64, 64, 3), dtype=np.uint8)
    goal = rng.integers(0, 256, frame.shape, dtype=np.uint8)
    obs = {"pixels": frame[:64], "wrist_pixels": frame[64:], "state": np.zeros(7, np.float32)}
    planner = CEMConfig(samples=16, iterations=2, topk=4, horizon=2)
    plans = []
    for world_model in (wm, OnnxWorldModel(folder)):
        agent = MPCAgent(LatentCostModel(world_model), planner, seed=0)
        agent.reset(goal)  # two views: the goal frame stacks them, as the observation does
        agent.act(obs)
        plans.append(agent.plan)
    torch.testing.assert_close(plans[1], plans[0], rtol=0, atol=TOL)


def test_card_records_what_was_measured(exported) -> None:
    _, folder = exported
    card = json.loads((folder / "card.json").read_text())
    assert card["opset"] >= 18 and card["source"] == {"kind": "random"}
    assert set(card["versions"]) == {"torch", "onnx", "onnxruntime"}
    assert card["shapes"]["encoder"]["inputs"]["image"][0] == "batch"  # the batch axis is dynamic
    assert card["shapes"]["predictor"]["inputs"]["actions"][0] == "rows"
    assert all(v < TOL for v in card["max_abs_diff_vs_torch"]["fp32"].values())
    assert {"encoder_latents", "rollout_latents", "planning_cost_h1", "planning_cost_h2"} <= set(
        card["max_abs_diff_vs_torch"]["int8"])
    assert {f["file"] for f in card["files"]["int8"].values()} == {"encoder.int8.onnx", "predictor.int8.onnx"}


def test_int8_plans_close_to_fp32(exported) -> None:
    wm, folder = exported
    z = latents(wm, 2)
    args = (z[:1, None], torch.zeros(1, 1, 7), z[1:], 1)
    actions = 0.05 * torch.randn(32, 1, 7, generator=torch.Generator().manual_seed(4))
    fp32 = OnnxWorldModel(folder).planning_cost(*args)(actions)
    int8 = OnnxWorldModel(folder, "int8").planning_cost(*args)(actions)
    assert (int8 - fp32).abs().max() < 0.02 < fp32.min()  # close, though not to 1e-4


def test_refusals_name_the_fix(exported, tmp_path: Path) -> None:
    wm, folder = exported
    z = latents(wm, 2)
    cost = OnnxWorldModel(folder).planning_cost(z[:1, None], torch.zeros(1, 1, 7), z[1:], 1)
    with pytest.raises(TypeError, match="planner=gradient"):
        cost(torch.zeros(4, 1, 7, requires_grad=True))
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    card = json.loads((copy / "card.json").read_text())
    del card["files"]["int8"]
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(FileNotFoundError, match="int8=true"):
        OnnxWorldModel(copy, "int8")
    (copy / "predictor.onnx").write_bytes((copy / "predictor.onnx").read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256"):
        OnnxWorldModel(copy)
    with pytest.raises(FileNotFoundError, match="ami-robot export"):
        OnnxWorldModel(tmp_path)


def test_without_the_extra_the_error_names_it(exported, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    wm, folder = exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: import raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[onnx\]'"):
        OnnxWorldModel(folder)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match="onnx"):
        export_onnx(wm, tmp_path)
