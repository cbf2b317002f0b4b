"""CPU energy estimated from CPU time when no hardware counter is readable.

cpu_J = cpu_seconds x watts_per_thread. The default 4 W per thread is CodeCarbon's figure for an
unknown CPU (and equals CodeCarbon's "process" mode); with a known TDP the per-thread wattage is
TDP / logical threads, i.e. one fully busy thread for one second costs TDP/threads joules. Idle
package power is not modelled, so this is a lower-bound-style proxy, labelled as an estimate.
"""

from __future__ import annotations

import os
from typing import Any

from dagrad.energy.reading import ComponentEnergy

SOURCE = "estimated:cpu-time"


class EstimateBackend:
    """Reports component "cpu" = window CPU seconds x watts per thread (options checked by the registry)."""

    name = "estimate"

    def __init__(
        self, watts_per_thread: float = 4.0, cpu_tdp_w: float | None = None, threads: int | None = None
    ) -> None:
        if cpu_tdp_w is not None:
            n = max(1, threads if threads is not None else (os.cpu_count() or 1))
            self.watts_per_thread = cpu_tdp_w / n
            self.params: dict[str, Any] = {
                "cpu_tdp_w": cpu_tdp_w,
                "threads": n,
                "watts_per_thread": self.watts_per_thread,
                "formula": "cpu_seconds * cpu_tdp_w / threads",
            }
        else:
            self.watts_per_thread = float(watts_per_thread)
            self.params = {
                "watts_per_thread": self.watts_per_thread,
                "formula": "cpu_seconds * watts_per_thread",
            }

    def begin(self) -> None:
        return None

    def end(self, start: Any, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        return {"cpu": ComponentEnergy(cpu_seconds * self.watts_per_thread, SOURCE, dict(self.params))}

    def describe(self) -> dict:
        return {"component": "cpu", "source": SOURCE, "params": dict(self.params)}

    def close(self) -> None:
        return None
