"""Shipped weights (safetensors + model cards); see each card."""
