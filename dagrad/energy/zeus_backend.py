"""Optional adapter for Zeus (`pip install zeus`, ~384 MB of dependencies; not installed by default).

Zeus reads the same NVML energy counter and RAPL zones as our own backends. Its `Measurement`
carries no provenance, and a device it cannot read is silently absent (so `total_energy` is 0 J on
a machine with no GPU and no readable RAPL). We translate "absent" into `joules=None` with a reason.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.reading import ComponentEnergy

SOURCE = "measured:zeus"


def _gpu_indices(device: str) -> list[int] | None:
    if device.startswith("cuda:") and device[5:].isdigit():
        return [int(device[5:])]
    return None  # Zeus default: every visible GPU


class ZeusBackend:
    """Components gpu / cpu / dram from one ZeusMonitor; missing devices become None with a reason."""

    name = "zeus"

    def __init__(self, device: str = "cpu", monitor_factory: Callable[..., Any] | None = None) -> None:
        if monitor_factory is None:
            try:
                from zeus.monitor import ZeusMonitor
            except ImportError as exc:
                raise BackendUnavailable("zeus is not installed (pip install zeus)") from exc
            monitor_factory = ZeusMonitor
        self.device = device
        try:
            self.monitor = monitor_factory(gpu_indices=_gpu_indices(device), approx_instant_energy=False)
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"ZeusMonitor failed to start: {type(exc).__name__}: {exc}") from exc
        self._keys = itertools.count()

    def begin(self) -> str:
        key = f"dagrad-{next(self._keys)}"
        self.monitor.begin_window(key)
        return key

    def end(self, start: str, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        m = self.monitor.end_window(start)
        out: dict[str, ComponentEnergy] = {}
        gpu = dict(getattr(m, "gpu_energy", None) or {})
        if gpu:
            out["gpu"] = self._measured(gpu, "gpu")
        elif self.device.startswith("cuda"):
            out["gpu"] = ComponentEnergy(None, "unavailable:zeus", {"reason": "Zeus found no readable GPU"})
        cpu = dict(getattr(m, "cpu_energy", None) or {})
        out["cpu"] = (
            self._measured(cpu, "cpu")
            if cpu
            else ComponentEnergy(None, "unavailable:zeus", {"reason": "Zeus found no readable RAPL CPU zone"})
        )
        dram = dict(getattr(m, "dram_energy", None) or {})
        if dram:
            out["dram"] = self._measured(dram, "dram")
        return out

    @staticmethod
    def _measured(per_device: dict, kind: str) -> ComponentEnergy:
        params: dict[str, Any] = {"devices": sorted(per_device)}
        joules = float(sum(per_device.values()))
        if joules == 0.0:
            params["note"] = f"{kind} counter did not advance (window shorter than the counter update period?)"
        return ComponentEnergy(joules, SOURCE, params)

    def describe(self) -> dict:
        gpus = getattr(self.monitor, "gpu_indices", None)
        cpus = getattr(self.monitor, "cpu_indices", None)
        return {"source": SOURCE, "gpu_indices": list(gpus or []), "cpu_indices": list(cpus or [])}

    def close(self) -> None:
        return None
