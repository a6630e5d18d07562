"""Shipped weights (safetensors + model cards); see each card."""

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent  # this folder, in a checkout or an installed wheel
