"""Export a world model's encoder and AC predictor as ONNX, with a card of what was measured.

`export_onnx` traces EncoderGraph and PredictorStepGraph (ami_robot.edge.graphs) with torch's
ONNX exporter, batch axes dynamic, optionally adds int8 copies (onnxruntime's dynamic
quantisation: int8 weights, activations quantised per call), then loads every graph it wrote
under onnxruntime and measures it against the torch model on the same inputs: the encoder's
latents, a rollout's latents and the planning cost over a batch of candidates. The card
(card.json) records those max |differences| beside the source checkpoints' sha256, the opset,
the graphs' input and output shapes, and the versions that made them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ami_robot.edge.graphs import MAX_STEPS, EncoderGraph, PredictorStepGraph
from ami_robot.edge.runtime import CARD, OnnxWorldModel, file_names, require
from ami_robot.planners import ACTION_DIM
from ami_robot.weights import sha256_file
from ami_robot.world_model import WorldModel

MAX_PROTO_BYTES = 2**31 - 2**24  # one ONNX file holds under 2 GiB (protobuf), less some room for the graph


@dataclass(frozen=True)
class ExportConfig:
    opset: int = 18  # the lowest opset torch's (dynamo) ONNX exporter writes
    int8: bool = False  # also write int8 dynamically quantised graphs (encoder.int8.onnx, ...)
    max_steps: int = MAX_STEPS  # time steps whose predictor RoPE tables are baked in (context + horizon)
    check_rows: int = 16  # candidate action sequences in the export-time comparison
    check_horizon: int = 3  # imagined steps in it (>= 2: later steps read the returned keys and values)
    seed: int = 0  # of the comparison's random frames and actions

    def __post_init__(self) -> None:
        if self.opset < 18:
            raise ValueError(f"opset must be >= 18 (torch's ONNX exporter writes 18 and up), "
                             f"got opset={self.opset}")
        if self.max_steps < 2:
            raise ValueError(f"max_steps must be >= 2 (context and one imagined step), got {self.max_steps}")
        if self.check_rows < 1:
            raise ValueError(f"check_rows must be >= 1, got check_rows={self.check_rows}")
        if not 1 <= self.check_horizon < self.max_steps:
            raise ValueError(f"check_horizon must be in 1 .. max_steps - 1 = {self.max_steps - 1}, "
                             f"got check_horizon={self.check_horizon}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's progress lines and deprecation notices are about torch, not about this model."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str],
            dynamic: dict[str, Any], path: Path, opset: int) -> None:
    require("onnxscript")  # the dynamo exporter writes through it (a dependency of the onnx extra)
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    if size > MAX_PROTO_BYTES:
        raise ValueError(f"{path.name}: {size / 2**30:.1f} GiB of weights do not fit one ONNX file (2 GiB); "
                         "export a smaller model")
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(module.eval(), args, path, input_names=inputs, output_names=outputs,
                          dynamic_shapes=dynamic, opset_version=opset, dynamo=True, external_data=False,
                          verbose=False)


def export_graphs(world_model: WorldModel, folder: Path, config: ExportConfig) -> None:
    """Write encoder.onnx and predictor.onnx (batch axes dynamic, RoPE tables as constants)."""
    batch, groups, rows, past = (torch.export.Dim(n, min=m) for n, m in
                                 (("batch", 1), ("groups", 1), ("rows", 1), ("past", 0)))
    enc = world_model.encoder.config
    image = torch.zeros(2, enc.in_chans, enc.img_size, enc.img_size)  # 2, not 1: 1 would be fixed
    _export(EncoderGraph(world_model.encoder), (image,), ["image"], ["z"], {"image": {0: batch}},
            folder / "encoder.onnx", config.opset)

    c = world_model.predictor.config
    g, b, length = 2, 4, 3  # example sizes; none may be 0 or 1, which the exporter would fix
    kv = torch.zeros(c.depth, b, c.heads, length, c.head_dim)
    args = (torch.zeros(g, c.patch_tokens, c.input_dim), torch.arange(g).repeat_interleave(b // g),
            torch.zeros(b, ACTION_DIM), torch.zeros(b, ACTION_DIM), torch.tensor(1), kv, kv.clone())
    dynamic = {"z": {0: groups}, "rows": {0: rows}, "actions": {0: rows}, "states": {0: rows}, "step": None,
               "past_keys": {1: rows, 3: past}, "past_values": {1: rows, 3: past}}
    _export(PredictorStepGraph(world_model.predictor, config.max_steps), args,
            ["z", "rows", "actions", "states", "step", "past_keys", "past_values"],
            ["z_next", "keys", "values"], dynamic, folder / "predictor.onnx", config.opset)


def quantise(folder: Path) -> None:
    """int8 copies of the fp32 graphs: MatMul weights quantised per output channel, activations per
    call (dynamic). The patch embedding's Conv stays fp32: it is a small share of the encoder."""
    quantization = require("onnxruntime.quantization")
    # The quantiser advises shape pre-processing on the root logger; with it the int8 differences
    # measured the same (micro model), so the advice is silenced here rather than taken.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        for part, name in file_names("int8").items():
            quantization.quantize_dynamic(folder / file_names("fp32")[part], folder / name,
                                          weight_type=quantization.QuantType.QInt8, per_channel=True,
                                          op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)


def compare(world_model: WorldModel, onnx_model: OnnxWorldModel, config: ExportConfig) -> dict[str, float]:
    """Max |onnx - torch| over the same random frames and candidate actions: encoder latents, rollout
    latents (horizon check_horizon) and the planning cost at horizon 1 and check_horizon."""
    gen = torch.Generator().manual_seed(config.seed)
    size = world_model.image_size
    frames = torch.randint(0, 256, (2, world_model.views * size, size, 3), generator=gen, dtype=torch.uint8)
    z_torch, z_onnx = world_model.encode(frames), onnx_model.encode(frames)  # (2, N, D)
    out = {"encoder_latents": float((z_torch - z_onnx).abs().max())}
    context, goal = z_torch[:1, None], z_torch[1:]  # (1, 1, N, D), (1, N, D): the same latents for both
    state = 0.1 * torch.randn(1, 1, ACTION_DIM, generator=gen)
    h = config.check_horizon
    actions = 0.05 * torch.randn(config.check_rows, h, ACTION_DIM, generator=gen)
    with torch.no_grad():
        rollout = world_model.rollout(context, state, actions)
    out["rollout_latents"] = float((rollout - onnx_model.rollout(context, state, actions)).abs().max())
    for horizon in sorted({1, h}):
        a = actions[:, :horizon]
        with torch.no_grad():
            cost_torch = world_model.planning_cost(context, state, goal, horizon)(a)
        cost_onnx = onnx_model.planning_cost(context, state, goal, horizon)(a)
        out[f"planning_cost_h{horizon}"] = float((cost_torch - cost_onnx).abs().max())
    return out


def _io(onnx_model: OnnxWorldModel) -> dict[str, Any]:
    """Each graph's inputs and outputs, name -> shape (named dims are dynamic)."""
    return {part: {"inputs": {i.name: i.shape for i in s.get_inputs()},
                   "outputs": {o.name: o.shape for o in s.get_outputs()}}
            for part, s in onnx_model.sessions.items()}


def export_onnx(world_model: WorldModel, folder: str | Path, config: ExportConfig | None = None,
                source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the graphs and card.json to `folder`; return the card. `source` says where the weights came
    from (checkpoint paths and sha256s) and is copied onto the card."""
    config = config or ExportConfig()
    onnx, ort = require("onnx"), require("onnxruntime")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    world_model = world_model.float().cpu().eval()
    export_graphs(world_model, folder, config)
    precisions = ["fp32", "int8"] if config.int8 else ["fp32"]
    if config.int8:
        quantise(folder)
    card: dict[str, Any] = {
        "format": "ami-robot/onnx-v1",
        "source": source or {},
        "encoder_config": dataclasses.asdict(world_model.encoder.config),
        "predictor_config": dataclasses.asdict(world_model.predictor.config),
        "opset": config.opset, "max_steps": config.max_steps,
        "rope": "tables baked as constants: the encoder's (n, head_dim), the predictor's "
                f"({config.max_steps} steps, cond + N, head_dim) picked by the `step` input",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "files": {p: {part: {"file": name, "sha256": sha256_file(folder / name)}
                      for part, name in file_names(p).items()} for p in precisions},
    }
    (folder / CARD).write_text(_json(card))  # the runtime reads it to check the files it loads
    checks, shapes = {}, None
    for p in precisions:
        onnx_model = OnnxWorldModel(folder, p)
        checks[p] = compare(world_model, onnx_model, config)
        shapes = shapes or _io(onnx_model)
    card["shapes"] = shapes
    card["max_abs_diff_vs_torch"] = checks
    card["checked_on"] = (f"2 uniform random uint8 frames and {config.check_rows} candidate action sequences "
                          f"(std 0.05) of horizon {config.check_horizon}, seed {config.seed}, onnxruntime "
                          f"{ort.__version__} CPU")
    (folder / CARD).write_text(_json(card))
    return card


def _json(payload: Any) -> str:
    def plain(o: Any) -> Any:
        return o.item() if isinstance(o, np.generic) else str(o)

    return json.dumps(payload, indent=2, default=plain) + "\n"
