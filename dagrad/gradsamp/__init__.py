"""GradSamp: replace chosen epochs by a draw estimated from the last two epoch-end states (arXiv 2406.07332).

Public pieces: ``GradSamp`` / ``SampleOutcome`` (the engine's plug-in), ``Settings`` / ``resolve_settings``
(a run's sampler, schedule and switches, resolved once), the registries ``SAMPLERS`` and ``SCHEDULES`` (the
named update rules and epoch schedules; build one with ``SAMPLERS.build(name, options)``), ``History``
(epoch-end snapshots).
"""

from __future__ import annotations

from dagrad.gradsamp.gradsamp import GradSamp, SampleOutcome
from dagrad.gradsamp.history import History, Snapshot
from dagrad.gradsamp.samplers import SAMPLERS, Sampler
from dagrad.gradsamp.schedules import MIN_REAL_EPOCHS, SCHEDULES, Schedule, planned_epochs
from dagrad.gradsamp.settings import Settings, resolve_settings

__all__ = [
    "GradSamp", "SampleOutcome", "History", "Snapshot", "Sampler", "SAMPLERS", "Schedule", "SCHEDULES",
    "MIN_REAL_EPOCHS", "planned_epochs", "Settings", "resolve_settings",
]
