"""ami-robot: plan robot actions in a learned latent space, the V-JEPA 2-AC way."""

__version__ = "0.1.0"
