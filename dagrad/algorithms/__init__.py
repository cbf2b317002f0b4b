"""Algorithms: one file each, registered by name with default hyperparameters (see registry.py)."""

from dagrad.algorithms.base import Algorithm
from dagrad.algorithms.registry import build, check_name, names, resolve_hparams

__all__ = ["Algorithm", "build", "check_name", "names", "resolve_hparams"]
