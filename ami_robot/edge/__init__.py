"""The world model on an edge runtime: ONNX export (`ami-robot export`) and an onnxruntime backend.

    export_onnx(world_model, folder, ExportConfig(int8=True))   # encoder.onnx, predictor.onnx, card.json
    OnnxWorldModel(folder, precision="int8")                     # plans as a WorldModel does

onnx and onnxruntime are an optional extra (`pip install -e '.[onnx]'`): this package imports
without them and names the extra when a function needs them.
"""

from .export import ExportConfig, export_onnx
from .graphs import MAX_STEPS, EncoderGraph, PredictorStepGraph
from .runtime import EXTRA, PRECISIONS, MissingExtraError, OnnxWorldModel, read_card, require

__all__ = [
    "EXTRA",
    "MAX_STEPS",
    "PRECISIONS",
    "EncoderGraph",
    "ExportConfig",
    "MissingExtraError",
    "OnnxWorldModel",
    "PredictorStepGraph",
    "export_onnx",
    "read_card",
    "require",
]
