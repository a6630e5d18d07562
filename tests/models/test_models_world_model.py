"""WorldModel: preprocessing, caching that changes nothing but speed, causality, batching, energies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ami_robot.models import ENCODER_CONFIGS, PREDICTOR_CONFIGS, ACPredictor, VisionTransformer
from ami_robot.weights import save_model
from ami_robot.world_model import WorldModel, normalise

E, C, N, D = 2, 2, 64, 96


@pytest.fixture(scope="module")
def wm() -> WorldModel:
    return WorldModel.random("micro", "micro", seed=0)


def context(seed: int = 0, episodes: int = E, steps: int = C) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = normalise(torch.randn(episodes, steps, N, D, generator=g))
    s = torch.cat([torch.randn(episodes, steps, 3, generator=g) * 0.1,
                   torch.rand(episodes, steps, 3, generator=g) - 0.5,
                   torch.rand(episodes, steps, 1, generator=g)], dim=-1)
    return z, s


def actions(rows: int, horizon: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, horizon, 7, generator=torch.Generator().manual_seed(seed)) * 0.05


def test_encode_shapes_and_normalisation(wm: WorldModel) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 80, 3), dtype=np.uint8)
    z = wm.encode(frames)
    assert z.shape == (3, 64, 96) and z.dtype == torch.float32
    torch.testing.assert_close(z.mean(-1), torch.zeros(3, 64), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(-1, unbiased=False), torch.ones(3, 64), atol=1e-3, rtol=0)
    torch.testing.assert_close(wm.encode(torch.from_numpy(frames)), z)  # numpy or tensor


def test_preprocess_crops_the_centre(wm: WorldModel) -> None:
    frame = np.zeros((1, 64, 128, 3), np.uint8)  # wide: the centre square is columns 32..95
    frame[:, :, 32:96] = 255
    clip = wm.preprocess(frame)
    assert clip.shape == (1, 3, 2, 64, 64)
    white = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(clip[0, :, 0], white[:, None, None].expand(3, 64, 64))
    assert torch.equal(clip[:, :, 0], clip[:, :, 1])  # one image repeated into one tubelet
    tall = np.zeros((1, 200, 100, 3), np.uint8)
    tall[:, 50:150] = 255
    torch.testing.assert_close(wm.preprocess(tall)[0, :, 0], white[:, None, None].expand(3, 64, 64))


def test_preprocess_rejects_floats(wm: WorldModel) -> None:
    with pytest.raises(ValueError, match="uint8"):
        wm.preprocess(np.zeros((1, 64, 64, 3), np.float32))


@pytest.mark.parametrize("steps", [1, 3])
def test_cached_rollout_equals_uncached(wm: WorldModel, steps: int) -> None:
    z, s = context(steps=steps)
    a = actions(E, 3)
    cached = wm.rollout(z, s, a)
    assert cached.shape == (E, 3, N, D)
    torch.testing.assert_close(cached, wm.rollout(z, s, a, use_cache=False), atol=1e-5, rtol=0)


def test_rollout_is_causal_in_actions(wm: WorldModel) -> None:
    z, s = context()
    a = actions(E, 4)
    b = a.clone()
    b[:, 2] += 0.1
    before, after = wm.rollout(z, s, a), wm.rollout(z, s, b)
    torch.testing.assert_close(before[:, :2], after[:, :2], atol=1e-6, rtol=0)
    assert (before[:, 2:] - after[:, 2:]).abs().max() > 1e-4


def test_rollout_uses_the_propagated_state(wm: WorldModel) -> None:
    z, s = context()
    a = actions(E, 2)
    moved = s.clone()
    moved[:, :-1] += 0.3  # earlier context states change the derived context actions too
    assert (wm.rollout(z, s, a) - wm.rollout(z, moved, a)).abs().max() > 1e-4


def test_batch_of_candidates_equals_one_by_one(wm: WorldModel) -> None:
    z, s = context()
    z_goal = normalise(torch.randn(E, N, D))
    per, horizon = 3, 2
    a = actions(E * per, horizon)
    cost = wm.planning_cost(z, s, z_goal, horizon)(a)
    assert cost.shape == (E * per,)
    for row in range(E * per):
        e = row // per
        last = wm.rollout(z[e:e + 1], s[e:e + 1], a[row:row + 1], use_cache=False)[:, -1]
        expected = WorldModel.energy(last, z_goal[e:e + 1])
        torch.testing.assert_close(cost[row:row + 1], expected, atol=1e-5, rtol=0)
    # The same candidates through the batched rollout with shared context rows.
    shared = wm.rollout(z, s, a)[:, -1]
    torch.testing.assert_close(WorldModel.energy(shared, z_goal), cost, atol=1e-5, rtol=0)


@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
def test_view_weights_weigh_each_views_mean(metric: str) -> None:
    g = torch.Generator().manual_seed(3)
    z, goal = normalise(torch.randn(4, N, D, generator=g)), normalise(torch.randn(2, N, D, generator=g))
    plain = WorldModel.energy(z, goal, metric)
    torch.testing.assert_close(WorldModel.energy(z, goal, metric, (2.0, 2.0)), plain, atol=1e-6, rtol=0)
    half = N // 2  # two views of 32 tokens, view-major
    first = WorldModel.energy(z[:, :half], goal[:, :half], metric)
    second = WorldModel.energy(z[:, half:], goal[:, half:], metric)
    torch.testing.assert_close(WorldModel.energy(z, goal, metric, (1.0, 0.0)), first, atol=1e-6, rtol=0)
    torch.testing.assert_close(WorldModel.energy(z, goal, metric, (3.0, 1.0)), 0.75 * first + 0.25 * second,
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("weights", [(1.0, -1.0), (0.0, 0.0), (1.0, 1.0, 1.0), (float("nan"), 1.0), ()])
def test_view_weights_refused_by_name(weights: tuple) -> None:
    z = normalise(torch.randn(2, N, D))
    with pytest.raises(ValueError, match="view_weights"):
        WorldModel.energy(z, z, "l1", weights)


def test_planning_cost_with_view_weights(wm: WorldModel) -> None:
    z, s = context()
    z_goal = normalise(torch.randn(E, N, D))
    a = actions(E * 3, 1)
    # the micro model reads one view: a weight for it changes nothing; two weights are refused
    torch.testing.assert_close(wm.planning_cost(z, s, z_goal, 1, view_weights=[0.5])(a),
                               wm.planning_cost(z, s, z_goal, 1)(a), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="one weight per camera view"):
        wm.planning_cost(z, s, z_goal, 1, view_weights=[1.0, 1.0])


def test_planning_cost_with_one_goal_and_one_frame(wm: WorldModel) -> None:
    z, s = context(episodes=1, steps=1)
    cost_fn = wm.planning_cost(z, s, z[:, 0], horizon=1)
    assert cost_fn(actions(5, 1)).shape == (5,)
    with pytest.raises(ValueError, match="horizon|actions"):
        cost_fn(actions(5, 2))


def test_planning_cost_is_differentiable_in_actions(wm: WorldModel) -> None:
    z, s = context()
    a = actions(E * 2, 1).requires_grad_(True)
    cost = wm.planning_cost(z, s, z[:, -1], horizon=1)(a)
    cost.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in wm.parameters())


@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
def test_energy_nonnegative_and_zero_on_identity(metric: str) -> None:
    z = normalise(torch.randn(4, N, D))
    e = WorldModel.energy(z, z, metric)
    assert e.shape == (4,)
    torch.testing.assert_close(e, torch.zeros(4), atol=1e-6, rtol=0)
    other = WorldModel.energy(z, normalise(torch.randn(1, N, D)), metric)  # one goal for all rows
    assert other.shape == (4,) and torch.all(other > 0)


def test_energy_l1_is_mean_absolute_difference() -> None:
    z, g = torch.zeros(1, 2, 3), torch.ones(1, 2, 3)
    assert WorldModel.energy(z, 2 * g).item() == 2.0
    with pytest.raises(ValueError, match="metric"):
        WorldModel.energy(z, g, "l3")


def test_random_is_reproducible_and_from_checkpoint_round_trips(tmp_path: Path) -> None:
    a, b = WorldModel.random("micro", "micro", seed=3), WorldModel.random("micro", "micro", seed=3)
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    torch.testing.assert_close(a.encode(frames), b.encode(frames), atol=0, rtol=0)
    save_model(a.encoder, tmp_path / "encoder.safetensors")
    save_model(a.predictor, tmp_path / "predictor.safetensors")
    c = WorldModel.from_checkpoint(tmp_path)
    z = a.encode(frames)[:, None]
    s = torch.zeros(2, 1, 7)
    torch.testing.assert_close(c.rollout(z, s, actions(2, 2)), a.rollout(z, s, actions(2, 2)), atol=0, rtol=0)


def test_random_with_other_image_size() -> None:
    wm = WorldModel.random("micro", "micro", image_size=32)
    assert wm.encode(np.zeros((1, 40, 40, 3), np.uint8)).shape == (1, 16, 96)


def test_mismatched_models_are_refused() -> None:
    with pytest.raises(ValueError, match="input_dim"):
        WorldModel(VisionTransformer(ENCODER_CONFIGS["micro"]), ACPredictor(PREDICTOR_CONFIGS["tiny"]))


def test_dtype_is_a_constructor_argument() -> None:
    z, s = context()
    a = actions(E, 2)
    wm32 = WorldModel.random("micro", "micro", seed=5)
    wm64 = WorldModel.random("micro", "micro", seed=5, dtype=torch.float64)
    assert wm64.encode(np.zeros((1, 64, 64, 3), np.uint8)).dtype == torch.float64
    out64 = wm64.rollout(z, s, a)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), wm32.rollout(z, s, a), atol=1e-4, rtol=0)
    cost = wm64.planning_cost(z, s, z[:, -1], horizon=2)(a.repeat_interleave(2, 0))
    assert cost.dtype == torch.float32 and cost.shape == (2 * E,)


def test_from_reference_ac_checkpoint(tmp_path: Path) -> None:
    wm = WorldModel.random("micro", "micro", seed=7)
    torch.save({"encoder": {f"module.backbone.{k}": v for k, v in wm.encoder.state_dict().items()},
                "predictor": {f"module.{k}": v for k, v in wm.predictor.state_dict().items()},
                "epoch": 1}, tmp_path / "vjepa2-ac.pt")
    loaded = WorldModel.from_reference(tmp_path / "vjepa2-ac.pt", "micro", "micro")
    frames = np.random.default_rng(2).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    z = wm.encode(frames)
    torch.testing.assert_close(loaded.encode(frames), z, atol=0, rtol=0)
    s, a = torch.zeros(1, 1, 7), actions(1, 2)
    torch.testing.assert_close(loaded.rollout(z[:, None], s, a), wm.rollout(z[:, None], s, a), atol=0, rtol=0)


@pytest.mark.parametrize("steps,horizon", [(1, 1), (4, 3)])
def test_cached_and_uncached_plans_differ_only_by_cost_rounding(wm: WorldModel, steps: int,
                                                                horizon: int) -> None:
    """bench_planners.py's max_plan_diff: the KV cache changes costs by float rounding (~1e-7), and
    CEM's top-k can keep another elite where two candidates are that close. With both costs cut to
    the same 1e-4 grid (the rounding gone), the two computations plan the same actions."""
    from ami_robot.planners import CEMConfig, cem

    z, s = context(episodes=1, steps=steps)
    z_goal = normalise(torch.randn(1, N, D, generator=torch.Generator().manual_seed(3)))
    cached = wm.planning_cost(z, s, z_goal, horizon)

    def uncached(a: torch.Tensor) -> torch.Tensor:
        return WorldModel.energy(wm.rollout(z, s, a, use_cache=False)[:, -1], z_goal)

    def on_grid(cost):
        return lambda a: torch.round(cost(a) * 1e4) / 1e4

    a = actions(64, horizon)
    torch.testing.assert_close(cached(a), uncached(a), atol=1e-5, rtol=0)
    cfg = CEMConfig.cpu_default(samples=64, iterations=3, horizon=horizon)
    plans = [cem(on_grid(cost), cfg, generator=torch.Generator().manual_seed(0))
             for cost in (cached, uncached)]
    torch.testing.assert_close(plans[0], plans[1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("steps,horizon", [(1, 1), (3, 2)])
def test_planning_a_few_episodes_at_a_time_changes_no_cost(wm: WorldModel, steps: int, horizon: int) -> None:
    """plan_chunk_rows runs the predictor on whole episodes of a planning cost at a time, or on one
    episode's candidates in row chunks where it has more (faster on a CPU); every candidate's
    energy is the one computed in a single call, the context's cache cut by episodes included, and
    gradients still reach the actions."""
    z, s = context(episodes=5, steps=steps)
    z_goal = normalise(torch.randn(5, N, D, generator=torch.Generator().manual_seed(3)))
    a = actions(5 * 6, horizon)
    costs, default = {}, wm.plan_chunk_rows
    try:
        for chunk in (None, 12, 6, 4, 1):  # all at once; 2 episodes; 1; rows 4 + 2 of one; row by row
            wm.plan_chunk_rows = chunk
            costs[chunk] = wm.planning_cost(z, s, z_goal, horizon)(a)
        wm.plan_chunk_rows = 6
        grad_a = a.clone().requires_grad_(True)
        wm.planning_cost(z, s, z_goal, horizon)(grad_a).sum().backward()
    finally:
        wm.plan_chunk_rows = default
    for chunk in (12, 6, 4, 1):
        torch.testing.assert_close(costs[chunk], costs[None], atol=1e-6, rtol=0)
    assert grad_a.grad is not None and grad_a.grad.abs().sum() > 0
