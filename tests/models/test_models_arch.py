"""The encoder and predictor match shared/VJEPA2_FACTS.md: sizes, names, RoPE, masks, outputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import vjepa2_reference as ref

from ami_robot.models import (
    ENCODER_CONFIGS,
    PREDICTOR_CONFIGS,
    ACPredictor,
    EncoderConfig,
    KVCache,
    PredictorConfig,
    VisionTransformer,
    block_causal_mask,
    rope_tables,
    segment_dim,
)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Published sizes: ViT-L ~300M, ViT-H ~600M (632M counted), ViT-g ~1.01B, AC predictor ~300M.
@pytest.mark.parametrize(("name", "low", "high"), [
    ("vit_large", 300e6, 310e6),
    ("vit_huge", 600e6, 640e6),
    ("vit_giant", 1.005e9, 1.02e9),
    ("vit_giant_384", 1.005e9, 1.02e9),
])
def test_released_encoder_sizes_on_meta(name: str, low: float, high: float) -> None:
    with torch.device("meta"):
        model = VisionTransformer(ENCODER_CONFIGS[name])
    assert low <= n_params(model) <= high
    assert next(model.parameters()).is_meta


def test_released_predictor_size_on_meta() -> None:
    with torch.device("meta"):
        model = ACPredictor(PREDICTOR_CONFIGS["vjepa2_ac_vit_giant"])
    assert 300e6 <= n_params(model) <= 310e6  # ~305M


def test_vit_giant_names_and_shapes() -> None:
    with torch.device("meta"):
        state = VisionTransformer(ENCODER_CONFIGS["vit_giant"]).state_dict()
    assert state["patch_embed.proj.weight"].shape == (1408, 3, 2, 16, 16)
    assert state["blocks.0.attn.qkv.weight"].shape == (4224, 1408)
    assert state["blocks.39.mlp.fc1.weight"].shape == (6144, 1408)
    assert state["blocks.39.mlp.fc2.weight"].shape == (1408, 6144)
    per_block = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                 "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                 "mlp.fc2.weight", "mlp.fc2.bias"}
    expected = {"patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    expected |= {f"blocks.{i}.{k}" for i in range(40) for k in per_block}
    assert set(state) == expected
    assert ENCODER_CONFIGS["vit_giant"].heads == 22


def test_released_predictor_names_and_shapes() -> None:
    with torch.device("meta"):
        state = ACPredictor(PREDICTOR_CONFIGS["vjepa2_ac_vit_giant"]).state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["predictor_embed.weight"] == (1024, 1408)
    assert shapes["action_encoder.weight"] == (1024, 7)
    assert shapes["state_encoder.weight"] == (1024, 7)
    assert shapes["extrinsics_encoder.weight"] == (1024, 6)
    assert shapes["predictor_proj.weight"] == (1408, 1024)
    assert shapes["predictor_blocks.23.attn.qkv.weight"] == (3072, 1024)
    assert "predictor_norm.weight" in shapes and "predictor_blocks.24.norm1.weight" not in shapes


@pytest.mark.parametrize(("head_dim", "segment"), [(64, 20), (80, 26), (48, 16)])
def test_rope_segments(head_dim: int, segment: int) -> None:
    assert segment_dim(head_dim) == segment
    t = torch.arange(3.0)
    cos, sin = rope_tables(head_dim, t, t + 1, t + 2)
    assert torch.all(cos[:, 3 * segment:] == 1) and torch.all(sin[:, 3 * segment:] == 0)  # leftover unrotated


def test_rope_tiled_frequency_quirk() -> None:
    # Dim j of a segment of d dims uses frequency j mod d/2: the table repeats, it is not interleaved.
    d = segment_dim(64)
    cos, _ = rope_tables(64, torch.tensor([5.0]), torch.tensor([0.0]), torch.tensor([0.0]))
    seg = cos[0, :d]
    assert torch.allclose(seg[: d // 2], seg[d // 2:])
    assert not torch.allclose(seg[0::2], seg[1::2])  # an interleaved table would repeat pairwise
    assert torch.isclose(seg[1], torch.cos(torch.tensor(5.0 / 10000 ** (1 / (d / 2)))))


def test_rope_temporal_only_tokens() -> None:
    t = torch.tensor([2.0, 2.0])
    h = torch.tensor([float("nan"), 3.0])
    cos, sin = rope_tables(64, t, h, h)
    d = segment_dim(64)
    assert torch.all(cos[0, d:] == 1) and torch.all(sin[0, d:] == 0)
    assert torch.equal(cos[0, :d], cos[1, :d]) and not torch.all(sin[1, d:3 * d] == 0)


def test_encoder_matches_literal_facts() -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(ENCODER_CONFIGS["tiny"], depth=2)  # head dim 64: 20+20+20, 4 unrotated
    model = VisionTransformer(cfg).eval()
    video = torch.randn(2, 3, 4, 32, 48)  # 2 tubelets, a non-square 4 x 6 grid
    with torch.no_grad():
        out = model(video)
        expected = ref.encoder_forward(model, video)
    assert out.shape == (2, 2 * 4 * 6, 192)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)


def test_encoder_tokens_are_time_major() -> None:
    torch.manual_seed(0)
    model = VisionTransformer(ENCODER_CONFIGS["micro"]).eval()
    with torch.no_grad():
        tokens = model.patch_embed(torch.zeros(1, 3, 4, 16, 24).index_fill_(2, torch.tensor([2, 3]), 1.0))
    # Frames 2-3 (the second tubelet) are ones: tokens 6.. (after 2 x 3 patches of tubelet 0) differ.
    assert tokens.shape == (1, 2 * 2 * 3, 96)
    assert torch.allclose(tokens[0, :6], tokens[0, :1].expand(6, -1))
    assert not torch.allclose(tokens[0, 0], tokens[0, 6])


def test_predictor_matches_literal_facts() -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(PREDICTOR_CONFIGS["tiny"], img_size=32, depth=2)  # 4 x 4 grid
    model = ACPredictor(cfg).eval()
    b, steps, n = 2, 3, 16
    z, a, s = torch.randn(b, steps, n, 192), torch.randn(b, steps, 7), torch.randn(b, steps, 7)
    with torch.no_grad():
        out = model(z, a, s)
        expected = ref.predictor_forward(model, z.flatten(1, 2), a, s).view(b, steps, n, 192)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)


def test_predictor_is_block_causal() -> None:
    torch.manual_seed(0)
    model = ACPredictor(PREDICTOR_CONFIGS["micro"]).eval()
    z, a, s = torch.randn(1, 4, 64, 96), torch.randn(1, 4, 7), torch.randn(1, 4, 7)
    a2 = a.clone()
    a2[:, 2] += 1.0
    with torch.no_grad():
        out, out2 = model(z, a, s), model(z, a2, s)
    torch.testing.assert_close(out[:, :2], out2[:, :2], atol=1e-6, rtol=0)
    assert (out[:, 2:] - out2[:, 2:]).abs().max() > 1e-3


def test_block_causal_mask() -> None:
    m = block_causal_mask(2, 3, past=1)
    assert m.shape == (6, 7)
    assert m[:, 0].all() and m[:3, 4:].logical_not().all() and m[3:, 1:].all()


def test_kv_cache_step_by_step_equals_full_sequence() -> None:
    torch.manual_seed(0)
    model = ACPredictor(PREDICTOR_CONFIGS["micro"]).eval()
    z, a, s = torch.randn(2, 4, 64, 96), torch.randn(2, 4, 7), torch.randn(2, 4, 7)
    with torch.no_grad():
        full = model(z, a, s)
        cache = KVCache.empty(2)
        first = model(z[:, :2], a[:, :2], s[:, :2], cache=cache)  # two steps at once, then one by one
        rest = [model(z[:, k:k + 1], a[:, k:k + 1], s[:, k:k + 1], cache=cache) for k in (2, 3)]
    assert cache.steps == 4 and cache.tokens == 4 * 66
    torch.testing.assert_close(torch.cat([first, *rest], 1), full, atol=1e-5, rtol=0)


def test_shared_prefix_equals_copied_prefix() -> None:
    torch.manual_seed(0)
    model = ACPredictor(PREDICTOR_CONFIGS["micro"]).eval()
    groups, per = 2, 3
    z, a, s = torch.randn(groups, 3, 64, 96), torch.randn(groups, 2, 7), torch.randn(groups, 3, 7)
    a_new = torch.randn(groups * per, 1, 7)
    with torch.no_grad():
        prefix = KVCache.empty(2)
        model(z[:, :2], a, s[:, :2], cache=prefix)
        shared = model(z[:, 2:], a_new, s[:, 2:].repeat_interleave(per, 0),
                       cache=KVCache.empty(2, prefix=prefix))  # z with G rows, actions with G*S rows
        rep = lambda x: x.repeat_interleave(per, 0)  # noqa: E731
        full = model(rep(z), torch.cat([rep(a), a_new], 1), rep(s))[:, 2:]
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [dict(dim=100, heads=3), dict(dim=192, heads=64), dict(img_size=60),
                                 dict(depth=0)])
def test_configs_validate(bad: dict) -> None:
    with pytest.raises(ValueError):
        EncoderConfig(**bad)
    with pytest.raises(ValueError):
        PredictorConfig(**bad)


def test_predictor_and_encoder_train() -> None:
    torch.manual_seed(0)
    enc, pred = VisionTransformer(ENCODER_CONFIGS["micro"]), ACPredictor(PREDICTOR_CONFIGS["micro"])
    z = enc(torch.randn(1, 3, 4, 64, 64)).view(1, 2, 64, 96)
    a = torch.randn(1, 2, 7)
    pred(z, a, a).abs().mean().backward()
    no_grad = [n for n, p in [*enc.named_parameters(), *pred.named_parameters()]
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == ["extrinsics_encoder.weight", "extrinsics_encoder.bias"]  # unused, as released
