"""`ami-robot export`: the model's encoder and AC predictor as ONNX graphs, with card.json.

The graphs run under onnxruntime as `model=onnx model.path=<out>` in every planning command; the card
records the source checkpoints' sha256, the opset, the graphs' shapes, the versions and the max
|difference| to torch measured here (ami_robot.edge).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ami_robot.apps.common import AppError, build_world_model, output_dir
from ami_robot.apps.schemas import ExportArgs, app_args
from ami_robot.edge import MissingExtraError, export_onnx


def run(cfg: DictConfig) -> None:
    args = app_args(cfg, ExportArgs, "export")
    if cfg.model.get("kind") == "onnx":
        raise AppError("model=onnx is already an export; export a torch model (model=shipped, model=random, "
                       "model=reference)")
    if cfg.model.get("dtype", "float32") != "float32":
        raise AppError(f"export traces the float32 model; drop model.dtype={cfg.model.dtype} (the ONNX "
                       "graphs come as fp32, and int8 with int8=true)")
    world_model, record = build_world_model(cfg.model)
    out = Path(args.out) if args.out else output_dir()
    try:
        card = export_onnx(world_model, out, args.config, source=record)
    except MissingExtraError as exc:
        raise AppError(str(exc)) from None
    for precision, diffs in card["max_abs_diff_vs_torch"].items():
        files = ", ".join(f["file"] for f in card["files"][precision].values())
        worst = ", ".join(f"{name} {value:.2g}" for name, value in diffs.items())
        print(f"{precision}: {files}; max |onnx - torch|: {worst}")
    print(f"card {out / 'card.json'}")
    print(f"plan with it: ami-robot eval model=onnx model.path={out}"
          + (" (model.precision=int8 for the int8 graphs)" if args.int8 else ""))
