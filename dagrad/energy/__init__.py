"""Energy metering: named windows that report joules per hardware component, each with a source label.

    meter = build_meter(resolve_energy(cfg.energy), device)  # a run: build_meter(experiment.energy, device)
    with meter.window("train") as reading:
        ...
    reading.joules, reading.sources, reading.to_dict()
"""

from __future__ import annotations

from dagrad.energy.meter import Meter
from dagrad.energy.reading import ComponentEnergy, Reading, co2_grams
from dagrad.energy.select import BACKENDS, EnergyEstimatedWarning, EnergySettings, build_meter, resolve_energy

__all__ = [
    "BACKENDS",
    "ComponentEnergy",
    "EnergyEstimatedWarning",
    "EnergySettings",
    "Meter",
    "Reading",
    "build_meter",
    "co2_grams",
    "resolve_energy",
]
