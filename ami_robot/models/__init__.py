"""V-JEPA 2 encoder and V-JEPA 2-AC predictor in plain torch, with the released parameter names."""

from .encoder import ENCODER_CONFIGS, EncoderConfig, VisionTransformer, split_views
from .geometry import actions_between, euler_to_matrix, matrix_to_euler, next_state
from .predictor import PREDICTOR_CONFIGS, ACPredictor, KVCache, PredictorConfig, block_causal_mask
from .rope import apply_rope, rope_tables, segment_dim

__all__ = [
    "ENCODER_CONFIGS",
    "PREDICTOR_CONFIGS",
    "ACPredictor",
    "EncoderConfig",
    "KVCache",
    "PredictorConfig",
    "VisionTransformer",
    "actions_between",
    "apply_rope",
    "block_causal_mask",
    "euler_to_matrix",
    "matrix_to_euler",
    "next_state",
    "rope_tables",
    "segment_dim",
    "split_views",
]
