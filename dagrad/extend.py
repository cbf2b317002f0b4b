"""What a plugin needs, from one place: the registries of every extension point, the base classes and
types a component implements, and the helpers that build one.

A plugin file (`dagrad train --plugin my_plugin.py`, or a package's `dagrad.<kind>` entry point) imports
from here and from `dagrad`, never from dagrad's internal modules, so those can move without breaking it:

    from dagrad.extend import SAMPLERS, Sampler, Option

The launcher names (`LAUNCHERS`, `LocalLauncher`, `JobResult`, `Progress`) load on first use: importing
this module does not import the sweep machinery.
"""

from __future__ import annotations

from typing import Any

from dagrad.algorithms.base import Algorithm, FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import ALGORITHMS, log_uniform
from dagrad.algorithms.registry import register as register_algorithm
from dagrad.averaging import AVERAGERS, Averager
from dagrad.datasets import DatasetSpec, register_dataset
from dagrad.datasets.folders import data_root, suite_from_tree
from dagrad.datasets.specs import DATASETS, Remote, Source
from dagrad.energy.reading import ComponentEnergy, Reading
from dagrad.energy.select import BACKENDS, MeterContext
from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.utils.errors import ConfigError, DagradError, DataError
from dagrad.gradsamp.history import History, Layout
from dagrad.gradsamp.samplers import SAMPLERS, SCALE, Moments, Sampler
from dagrad.gradsamp.schedules import SCHEDULES, Schedule
from dagrad.networks import NETWORKS
from dagrad.registry import REGISTRIES, Option, Registry

#: names loaded from the launch package on first use (PEP 562)
_LAUNCH = ("LAUNCHERS", "LocalLauncher", "JobResult", "Progress")

__all__ = [
    "ALGORITHMS", "AVERAGERS", "Algorithm", "Averager", "BACKENDS", "ComponentEnergy", "ConfigError", "DATASETS",
    "DagradError", "DataError", "DatasetSpec", "EpochKind", "EpochOutcome", "FeaturizerClassifier", "History",
    "Layout", "MeterContext", "Minibatch", "Moments", "NETWORKS", "Option", "REGISTRIES", "Reading", "Registry",
    "Remote", "SAMPLERS", "SCALE", "SCHEDULES", "Sampler", "Schedule", "Source", "Stats", "data_root",
    "log_uniform", "register_algorithm", "register_dataset", "suite_from_tree", *_LAUNCH,
]


def __getattr__(name: str) -> Any:
    if name in _LAUNCH:
        from dagrad.launch import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAUNCH))

