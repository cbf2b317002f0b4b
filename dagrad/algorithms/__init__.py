"""Algorithms: one file each, registered by name with their hyperparameters (see registry.py).

Importing this package registers the built-ins: ERM, CORAL, DANN (DomainBed's DG form) and DANN-GRL."""

from dagrad.algorithms.base import Algorithm, FeaturizerClassifier
from dagrad.algorithms.registry import ALGORITHMS, build, register, resolve_hparams
from dagrad.algorithms import coral, dann, dann_grl, erm  # noqa: F401,E402 - register the built-ins

__all__ = ["ALGORITHMS", "Algorithm", "FeaturizerClassifier", "build", "register", "resolve_hparams"]
