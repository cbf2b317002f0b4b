"""GradSamp: replace chosen epochs by a draw estimated from the last two epoch-end states (arXiv 2406.07332).

Public pieces: ``GradSamp`` / ``SampleOutcome`` (the engine's plug-in), ``build_sampler`` and
``build_schedule`` (the named update rules and epoch schedules), ``History`` (epoch-end snapshots).
"""

from __future__ import annotations

from dagrad.gradsamp.gradsamp import GradSamp, SampleOutcome
from dagrad.gradsamp.history import History, Snapshot
from dagrad.gradsamp.samplers import SAMPLERS, Sampler, build_sampler
from dagrad.gradsamp.schedules import MIN_REAL_EPOCHS, SCHEDULES, Schedule, build_schedule, planned_epochs

__all__ = [
    "GradSamp", "SampleOutcome", "History", "Snapshot", "Sampler", "SAMPLERS", "build_sampler",
    "Schedule", "SCHEDULES", "MIN_REAL_EPOCHS", "build_schedule", "planned_epochs",
]
