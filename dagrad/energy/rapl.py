"""CPU package and DRAM energy from Linux powercap RAPL counters (/sys/class/powercap/intel-rapl:*).

Domains are hierarchical (psys contains package, package contains core and uncore), so only
`package-N` zones (component "cpu") and `dram` zones (component "dram") are summed; core, uncore and
psys are listed as ignored, and the `intel-rapl-mmio` tree (a second view of the same package
counter) is never read. Counters wrap at `max_energy_range_uj`; every read folds at most one wrap
into a running total, and a light background poll (default every 60 s, well under the ~10-45 min a
counter takes to wrap) keeps long windows to at most one wrap between reads. AMD CPUs expose the
same interface since Linux 5.8 (package zones, no DRAM).

RAPL measures the whole package. When several jobs share the node (a sweep with `--workers N`), each
job's figure is attributed: the package and DRAM joules times the job's share of the node's busy CPU
time over the window (the job's CPU seconds, children included, over the busy seconds of every CPU in
/proc/stat), labelled `attributed:rapl` rather than `measured:rapl`. Option `attribution`: `node` (the
whole package), `cpu_share`, or `auto` (cpu_share when the launcher says workers share the node).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Callable

from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.reading import ComponentEnergy

SOURCE = "measured:rapl"
ATTRIBUTED = "attributed:rapl"
DEFAULT_ROOT = "/sys/class/powercap"
PROC_STAT = "/proc/stat"
#: set by a launcher that runs several jobs on one node at once (its value: how many)
SHARED_NODE_ENV = "DAGRAD_SHARED_NODE"
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (guest time is inside user)
_ZONE = re.compile(r"^intel-rapl(?::\d+)+$")


@dataclass(frozen=True)
class RaplZone:
    entry: str  # directory name, e.g. "intel-rapl:0:2"
    name: str  # content of its `name` file, e.g. "package-0", "dram"
    component: str  # "cpu" or "dram"
    max_range_uj: int


def _read_text(path: str) -> str:
    with open(path) as fh:
        return fh.read()


class RaplBackend:
    """Sums package zones into "cpu" and dram zones into "dram", labelled measured:rapl."""

    name = "rapl"

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        read_text: Callable[[str], str] = _read_text,
        poll_seconds: float | None = 60.0,
        attribution: str = "node",
        proc_stat: str = PROC_STAT,
        environ: dict | None = None,
    ) -> None:
        self.root = root
        self._read = read_text
        if attribution not in ("auto", "node", "cpu_share"):
            raise ValueError(f"attribution must be auto, node or cpu_share, got {attribution!r}")
        shared = (environ if environ is not None else os.environ).get(SHARED_NODE_ENV, "")
        self.attribution = ("cpu_share" if shared not in ("", "0", "1") else "node") if attribution == "auto" \
            else attribution
        self.proc_stat = proc_stat
        self._tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self.zones, self.ignored = self._discover()
        self._lock = threading.Lock()
        try:
            self._last = [self._raw(z) for z in self.zones]
        except PermissionError as exc:
            raise BackendUnavailable(
                f"permission denied reading {exc.filename or 'energy_uj'}: Linux >= 5.10 makes RAPL "
                "energy_uj root-only (PLATYPUS, CVE-2020-8694); run as root or grant read access"
            ) from exc
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot read RAPL energy_uj under {root}: {exc}") from exc
        self._total_uj = [0] * len(self.zones)
        self.last_error: str | None = None
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_seconds is not None:
            if not poll_seconds > 0:
                raise ValueError(f"poll_seconds must be > 0 or None, got {poll_seconds!r}")
            self._thread = threading.Thread(target=self._poll, name="dagrad-rapl-poll", daemon=True)
            self._thread.start()

    def _discover(self) -> tuple[list[RaplZone], list[str]]:
        if not os.path.isdir(self.root):
            raise BackendUnavailable(
                f"{self.root} does not exist: no powercap RAPL interface (not Linux, virtual machine, "
                "or the container masks /sys/devices/virtual/powercap)"
            )
        zones: list[RaplZone] = []
        ignored: list[str] = []
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith("intel-rapl-mmio"):
                ignored.append(f"{entry} (MMIO view of the package counter; would double count)")
                continue
            if not _ZONE.match(entry):
                continue
            base = os.path.join(self.root, entry)
            try:
                name = self._read(os.path.join(base, "name")).strip()
            except OSError as exc:
                ignored.append(f"{entry} (name unreadable: {exc})")
                continue
            if name.startswith("package"):
                component = "cpu"
            elif name == "dram":
                component = "dram"
            else:
                why = "contains the package domain" if name == "psys" else "part of the package domain"
                ignored.append(f"{entry} ({name}: {why}; not summed)")
                continue
            try:
                max_uj = int(self._read(os.path.join(base, "max_energy_range_uj")).strip())
            except PermissionError as exc:
                raise BackendUnavailable(f"permission denied reading {base}/max_energy_range_uj") from exc
            except (OSError, ValueError) as exc:
                raise BackendUnavailable(f"cannot read {base}/max_energy_range_uj: {exc}") from exc
            zones.append(RaplZone(entry, name, component, max_uj))
        if not any(z.component == "cpu" for z in zones):
            found = ", ".join(ignored) or "no intel-rapl:N zones"
            raise BackendUnavailable(f"no RAPL package zone under {self.root} (found: {found})")
        return zones, ignored

    def _raw(self, zone: RaplZone) -> int:
        return int(self._read(os.path.join(self.root, zone.entry, "energy_uj")).strip())

    def _sample(self) -> list[int]:
        """Read every zone, fold wraps into the running totals, return the unwrapped totals (uJ)."""
        with self._lock:
            for i, zone in enumerate(self.zones):
                raw = self._raw(zone)
                delta = raw - self._last[i]
                if delta < 0:  # the counter wrapped past max_energy_range_uj once since the last read
                    delta += zone.max_range_uj
                self._total_uj[i] += delta
                self._last[i] = raw
            return list(self._total_uj)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self._sample()
            except (OSError, ValueError) as exc:
                self.last_error = f"background RAPL read failed: {exc}"

    def node_busy_seconds(self) -> float:
        """Busy CPU seconds of the whole node since boot (every CPU, from the first line of /proc/stat)."""
        fields = self._read(self.proc_stat).splitlines()[0].split()
        if fields[0] != "cpu":
            raise ValueError(f"{self.proc_stat}: the first line is not the 'cpu' total")
        ticks = [int(v) for v in fields[1:]]
        return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / self._tick

    def begin(self) -> tuple | str:
        try:
            busy = self.node_busy_seconds() if self.attribution == "cpu_share" else None
            return self._sample(), busy
        except (OSError, ValueError, IndexError) as exc:
            return f"RAPL read failed at window start: {exc}"

    def end(self, start: tuple | str, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        components = sorted({z.component for z in self.zones})
        try:
            if isinstance(start, str):
                raise OSError(start)
            (before, busy0), now = start, self._sample()
            share = None
            if busy0 is not None:
                node = self.node_busy_seconds() - busy0
                share = min(1.0, cpu_seconds / node) if node > 0 else 1.0
        except (OSError, ValueError, IndexError) as exc:
            reason = {"reason": str(exc)}
            return {c: ComponentEnergy(None, "unavailable:rapl", dict(reason)) for c in components}
        out: dict[str, ComponentEnergy] = {}
        for comp in components:
            idx = [i for i, z in enumerate(self.zones) if z.component == comp]
            joules = sum(now[i] - before[i] for i in idx) / 1e6
            params: dict = {"zones": [self.zones[i].name for i in idx]}
            if share is None:
                out[comp] = ComponentEnergy(joules, SOURCE, params)
            else:
                params.update(node_joules=joules, cpu_share=share,
                              rule="job CPU seconds / node busy CPU seconds (/proc/stat) x package energy")
                out[comp] = ComponentEnergy(joules * share, ATTRIBUTED, params)
        return out

    def describe(self) -> dict:
        return {
            "source": ATTRIBUTED if self.attribution == "cpu_share" else SOURCE,
            "attribution": self.attribution,
            "root": self.root,
            "zones": {z.entry: {"name": z.name, "component": z.component, "max_energy_range_uj": z.max_range_uj}
                      for z in self.zones},
            "ignored": list(self.ignored),
            "wrap_poll_seconds": self.poll_seconds,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
