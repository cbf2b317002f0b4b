"""The meter: `with meter.window("train") as r:` fills `r` with seconds, CPU seconds and labelled joules.

A meter combines backends that each report some components (NVML -> gpu, RAPL -> cpu+dram,
estimate -> cpu). Backends snapshot counters at window start and difference them at window end,
so windows may nest. The reading is filled even when the body raises.
"""

from __future__ import annotations

import time
from typing import Any

from dagrad.energy.backend import Backend
from dagrad.energy.conditions import ConditionsProbe
from dagrad.energy.cputime import CpuClock
from dagrad.energy.reading import ComponentEnergy, Reading, co2_grams


class _Window:
    """Context manager for one window; returns the Reading on enter and fills it on exit."""

    __slots__ = ("_meter", "_reading", "_starts", "_t0", "_c0", "_machine")

    def __init__(self, meter: Meter, name: str) -> None:
        self._meter = meter
        self._reading = Reading(name)

    def __enter__(self) -> Reading:
        meter = self._meter
        if meter.closed:
            raise RuntimeError(f"meter is closed; cannot open window {self._reading.name!r}")
        self._starts = [b.begin() for b in meter.backends]
        self._machine = meter.conditions.begin() if meter.conditions is not None else None
        self._c0 = meter.cpu_clock.seconds()
        self._t0 = time.perf_counter()
        return self._reading

    def __exit__(self, *exc: Any) -> bool:
        meter = self._meter
        seconds = time.perf_counter() - self._t0
        cpu_seconds = meter.cpu_clock.seconds() - self._c0
        reading = self._reading
        reading.seconds = seconds
        reading.cpu_seconds = cpu_seconds
        for backend, start in zip(meter.backends, self._starts):
            try:
                reading.components.update(backend.end(start, seconds, cpu_seconds))
            except Exception as err:  # noqa: BLE001 - one broken backend must not lose the window
                key = getattr(backend, "component", backend.name)
                reading.components[key] = ComponentEnergy(
                    None, f"unavailable:{backend.name}", {"reason": f"{type(err).__name__}: {err}"}
                )
        reading.co2_grams = co2_grams(reading.joules, meter.grid_intensity_g_per_kwh)
        if meter.conditions is not None:
            try:
                reading.conditions = meter.conditions.end(self._machine, cpu_seconds)
            except Exception as err:  # noqa: BLE001 - a description must never lose the window
                reading.conditions = {"error": f"{type(err).__name__}: {err}"}
        return False


class Meter:
    """Named energy windows over a fixed set of backends; see `build_meter` for how they are chosen."""

    def __init__(
        self,
        backends: list[Backend],
        cpu_clock: CpuClock | None = None,
        grid_intensity_g_per_kwh: float | None = None,
        selection: dict | None = None,
        hardware: dict | None = None,
        conditions: ConditionsProbe | None = None,
    ) -> None:
        # no backend at all is a process whose parts other processes of the job meter (dagrad.energy.ranks)
        self.backends = list(backends)
        self.cpu_clock = cpu_clock or CpuClock()
        self.grid_intensity_g_per_kwh = grid_intensity_g_per_kwh
        self.selection = dict(selection or {})
        self.hardware = dict(hardware or {})
        self.conditions = conditions  # what every window records about the machine's other work
        self.closed = False

    def window(self, name: str) -> _Window:
        """`with meter.window(name) as reading:`; the reading is filled when the block exits."""
        return _Window(self, name)

    def describe(self) -> dict:
        """Backends chosen, why others were not, their parameters, and the hardware."""
        return {
            **self.selection,
            "backends": {b.name: b.describe() for b in self.backends},
            "cpu_seconds_scope": self.cpu_clock.scope_note,
            "grid_intensity_g_per_kwh": self.grid_intensity_g_per_kwh,
            "hardware": self.hardware,
        }

    def close(self) -> None:
        """Stop background threads and release handles; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for backend in self.backends:
            backend.close()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
