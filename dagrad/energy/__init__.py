"""Energy metering: named windows that report joules per hardware component, each with a source label.

    meter = build_meter(cfg.energy, device)
    with meter.window("train") as reading:
        ...
    reading.joules, reading.sources, reading.to_dict()
"""

from __future__ import annotations

from dagrad.energy.meter import Meter
from dagrad.energy.reading import ComponentEnergy, Reading, co2_grams
from dagrad.energy.select import BACKENDS, EnergyEstimatedWarning, build_meter

__all__ = [
    "BACKENDS",
    "ComponentEnergy",
    "EnergyEstimatedWarning",
    "Meter",
    "Reading",
    "build_meter",
    "co2_grams",
]
