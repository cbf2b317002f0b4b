"""A job's energy with nothing left out: what falls between the engine's windows is metered too.

The engine meters its phases (train, eval, averaging, final_eval) in windows of their own. `Gaps` meters
everything between them as `other` windows: startup (data, model, meter, a checkpoint loaded), record
writes, checkpoints, the idle baseline's bookkeeping. The `other` windows never overlap the phases
(some backends, CodeCarbon for one, cannot nest windows), so a job's `run` total is the sum of its
phases and its gaps, up to the microseconds between one window's end and the next one's start.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from dagrad.energy.meter import Meter
from dagrad.energy.reading import Reading, combine

#: phases whose windows, with `other`, make up a job (guard windows sit inside `train`)
PHASES = ("setup", "train", "eval", "averaging", "final_eval", "other")


class Gaps:
    """`other` windows between the engine's phases: `pause()` before a window that is not `other` opens,
    `resume()` after it closes, `take()` for the gap metered since the last take (startup, or the last
    epoch's record and checkpoint), which also pauses."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._window: Any = None
        self._reading: Optional[Reading] = None
        self._segments: list[Reading] = []
        self.resume()

    def resume(self) -> None:
        """Start metering a gap (no-op when one is open)."""
        if self._window is None:
            self._window = self.meter.window("other")
            self._reading = self._window.__enter__()

    def pause(self) -> None:
        """Close the open gap, keeping its reading for the next `take()` (no-op when none is open)."""
        if self._window is not None:
            window, reading = self._window, self._reading
            self._window = self._reading = None
            window.__exit__(None, None, None)
            self._segments.append(reading)

    def take(self) -> Reading:
        """Pause, and return everything metered as `other` since the last take, as one reading."""
        self.pause()
        segments, self._segments = self._segments, []
        if len(segments) == 1:
            return segments[0]
        return combine("other", segments)


def job_energy(records: list[dict], tail: list[Reading]) -> Reading:
    """The whole job from its records (every process of it, when resumed): the idle baseline in the header,
    every epoch's setup (a process's first epoch), train, eval and other windows, then `tail`, the windows after the last epoch."""
    header = records[0] if records and records[0].get("type") == "header" else {}
    windows = [Reading.from_dict(header["idle_power"]["reading"])] \
        if (header.get("idle_power") or {}).get("reading") else []
    for line in records:
        if line.get("type") == "epoch":
            windows += [Reading.from_dict(line["energy"][k]) for k in ("setup", "train", "eval", "other")
                        if (line.get("energy") or {}).get(k)]
    return combine("run", windows + tail)


def measure_idle_power(meter: Meter, seconds: float, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Idle power per component over `seconds` of doing nothing (after the device has drained its work,
    since backends synchronise before reading), stored once per job in the record header."""
    with meter.window("idle") as reading:
        sleep(seconds)
    return idle_power(reading)


def idle_power(reading: Reading) -> dict:
    """The header's idle baseline from an `idle` window's reading (one process's, or every process's
    combined)."""
    watts = {}
    for name, comp in reading.components.items():
        watts[name] = {"watts": comp.joules / reading.seconds if comp.joules is not None and reading.seconds > 0
                       else None, "source": comp.source}
    return {"seconds": reading.seconds, "components": watts, "reading": reading.to_dict(),
            "meaning": "mean power while the job's process sat idle; dynamic energy = gross - watts x seconds"}


def dynamic_joules(reading: Optional[dict], idle: Optional[dict]) -> Optional[float]:
    """Gross joules of a stored reading minus idle watts x its seconds, component by component; None
    without a baseline, or when a component is unreadable or has no idle figure from the same source."""
    if not reading or not idle or not reading.get("components"):
        return None
    idle_parts = idle.get("components") or {}
    seconds = float(reading.get("seconds") or 0.0)
    total = 0.0
    for name, comp in reading["components"].items():
        base = idle_parts.get(name) or {}
        if comp.get("joules") is None or base.get("watts") is None or base.get("source") != comp.get("source"):
            return None
        total += comp["joules"] - base["watts"] * seconds
    return total
