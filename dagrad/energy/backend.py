"""The contract every energy backend follows, and the placeholder for a component that cannot be read.

A backend snapshots its counters at window start (`begin`) and turns the snapshot into labelled
component energies at window end (`end`). Snapshots are plain values, so windows may nest or overlap.
"""

from __future__ import annotations

from typing import Any, Protocol

from dagrad.energy.reading import ComponentEnergy


class BackendUnavailable(Exception):
    """A backend cannot run here; `str(exc)` is the human-readable reason recorded in describe()."""


class Backend(Protocol):
    name: str

    def begin(self) -> Any:
        """Snapshot taken at window start."""

    def end(self, start: Any, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        """Energies since `start`; `seconds`/`cpu_seconds` are the window's wall and CPU time."""

    def describe(self) -> dict:
        """What is measured, how, and with which parameters."""

    def close(self) -> None:
        """Release handles and stop threads."""


class UnavailableComponent:
    """Reports a component that exists but cannot be read as `joules=None` with the reason, never 0."""

    def __init__(self, component: str, source: str, reason: str) -> None:
        self.name = source  # e.g. "unavailable:nvml"
        self.component = component
        self.source = source
        self.reason = reason

    def begin(self) -> None:
        return None

    def end(self, start: Any, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        return {self.component: ComponentEnergy(None, self.source, {"reason": self.reason})}

    def describe(self) -> dict:
        return {"component": self.component, "source": self.source, "reason": self.reason}

    def close(self) -> None:
        return None
