"""Strategy models: pure functions from the market history they are given to target weights.

Nothing here imports from `bot` or `audit`, reads a clock, or does I/O.
"""
from models.base import Decision, History, Model, input_sha256

__all__ = ["Decision", "History", "Model", "input_sha256"]
