"""FLARE: a PyTorch reinforcement-learning framework for embodied agents."""

__version__ = "0.1.0"
