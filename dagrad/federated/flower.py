"""Flower as an optional dependency: imported only where a federated run needs it, and its absence a
one-line error (`pip install 'dagrad[federated]'`) rather than a traceback. Flower's own chatter (its
telemetry, Ray's start-up logs) is turned off before it is imported."""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from types import ModuleType

from dagrad.utils.errors import ConfigError

INSTALL = "pip install 'dagrad[federated]'"
_QUIETED = False


def require_flwr(simulation: bool = False) -> ModuleType:
    """The `flwr` package, quiet; a ConfigError naming the extra to install when it (or Ray, for the
    simulation runtime) is missing."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no network calls from a training run
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # Ray's notice about num_gpus=0
    try:
        with warnings.catch_warnings():  # the deprecations of libraries Flower and Ray import
            warnings.simplefilter("ignore", DeprecationWarning)
            flwr = importlib.import_module("flwr")
    except ImportError:
        raise ConfigError(f"federated: this config needs Flower, which is not installed; install it with "
                          f"{INSTALL}") from None
    if simulation:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module("ray")
                importlib.import_module("flwr.simulation")
        except ImportError:
            raise ConfigError(f"federated.runtime=simulation needs Ray, which is not installed; install it with "
                              f"{INSTALL}") from None
    global _QUIETED
    if not _QUIETED:
        quiet()
        _QUIETED = True
    return flwr


def quiet(level: int = logging.WARNING) -> None:
    """Flower's per-round INFO lines off (dagrad prints its own); warnings and errors stay."""
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(level)
