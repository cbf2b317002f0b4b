"""The conditions a meter window ran under: how busy the machine was with other work, and how the job ran.

Energy estimated from CPU time, and even measured energy, moves with what else runs on the machine: a
busy neighbour slows the job's threads and shares their cores. So every window records, next to its
joules, the load average, the share of the machine's CPU time that *other* processes used during the
window (machine busy time from /proc/stat minus the job's own CPU seconds, over the machine's CPU
capacity in the window), the CPU frequency where it can be read, the thread counts and, on a GPU, the
other compute processes on the same GPU and its utilisation (NVML).

The readers take file paths (and an NVML module) so tests can hand them fake /proc and /sys trees. A
window reads /proc/stat at both edges and the rest at its end: a few small file reads, no device sync.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

#: the fields of /proc/stat's `cpu` line that are time spent doing work (guest time is inside user/nice)
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal
_ALL_FIELDS = 8  # user nice system idle iowait irq softirq steal


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def read_cpu_ticks(path: str = "/proc/stat") -> Optional[tuple[int, int]]:
    """(busy ticks, all ticks) of the whole machine since boot from /proc/stat's aggregate `cpu` line;
    None when it cannot be read."""
    text = _read(path)
    if not text:
        return None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:1 + _ALL_FIELDS]]
            except ValueError:
                return None
            values += [0] * (_ALL_FIELDS - len(values))
            return sum(values[i] for i in _BUSY_FIELDS), sum(values)
    return None


def read_loadavg(path: str = "/proc/loadavg") -> Optional[float]:
    """The 1-minute load average; None when it cannot be read."""
    text = _read(path)
    try:
        return float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def read_cpu_mhz(cpus: Optional[list[int]] = None, sysfs: str = "/sys/devices/system/cpu",
                 cpuinfo: str = "/proc/cpuinfo") -> Optional[float]:
    """Mean current frequency (MHz) of `cpus` (default: every CPU) from cpufreq's scaling_cur_freq (kHz),
    else from /proc/cpuinfo's `cpu MHz` lines; None when neither can be read (many VMs)."""
    paths = [f"{sysfs}/cpu{i}/cpufreq/scaling_cur_freq" for i in cpus] if cpus is not None \
        else sorted(glob.glob(f"{sysfs}/cpu[0-9]*/cpufreq/scaling_cur_freq"))
    values = []
    for p in paths:
        text = _read(p)
        try:
            values.append(int(text.strip()) / 1000.0) if text else None
        except ValueError:
            continue
    if not values:
        for line in (_read(cpuinfo) or "").splitlines():
            if line.lower().startswith("cpu mhz"):
                try:
                    values.append(float(line.split(":", 1)[1]))
                except ValueError:
                    continue
    return round(sum(values) / len(values), 1) if values else None


def read_process_threads(path: str = "/proc/self/status") -> Optional[int]:
    """OS threads of this process (`Threads:` in /proc/self/status); None when it cannot be read."""
    for line in (_read(path) or "").splitlines():
        if line.startswith("Threads:"):
            try:
                return int(line.split()[1])
            except (ValueError, IndexError):
                return None
    return None


def other_cpu_share(busy_ticks: int, all_ticks: int, own_cpu_seconds: float, tick_hz: float) -> Optional[float]:
    """Share (0..1) of the machine's CPU capacity over a window that processes other than the job used:
    (machine busy seconds - the job's CPU seconds) / machine capacity seconds, clamped to [0, 1] (the job's
    and the kernel's clocks tick at different resolutions); None for a window too short to tell."""
    if all_ticks <= 0:
        return None
    other = busy_ticks / tick_hz - own_cpu_seconds
    return min(1.0, max(0.0, other / (all_ticks / tick_hz)))


def gpu_neighbours(nvml: Any, handle: Any, own_pids: set[int]) -> dict:
    """Other compute processes on one GPU and its utilisation (%), from NVML; a part that cannot be read
    is None."""
    out: dict[str, Any] = {"other_processes": None, "utilisation_pct": None}
    try:
        procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        out["other_processes"] = sum(1 for p in procs if int(p.pid) not in own_pids)
    except Exception:  # noqa: BLE001 - the binding raises several NVMLError subclasses
        pass
    try:
        out["utilisation_pct"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # noqa: BLE001
        pass
    return out


@dataclass
class ConditionsPaths:
    """Where the readers look (fake trees in tests)."""

    stat: str = "/proc/stat"
    loadavg: str = "/proc/loadavg"
    sysfs_cpu: str = "/sys/devices/system/cpu"
    cpuinfo: str = "/proc/cpuinfo"
    status: str = "/proc/self/status"


class ConditionsProbe:
    """Snapshots the machine at a window's start (`begin`) and describes the window at its end (`end`)."""

    def __init__(self, paths: Optional[ConditionsPaths] = None, torch_threads: Optional[Callable[[], int]] = None,
                 cpus: Optional[list[int]] = None, gpu: Optional[tuple[Any, Any]] = None,
                 tick_hz: Optional[float] = None) -> None:
        self.paths = paths or ConditionsPaths()
        self._threads = torch_threads or _torch_threads
        self._cpus = cpus
        self._gpu = gpu  # (nvml module, handle) of the job's GPU, or None
        self._tick = tick_hz or (float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0)
        self._mhz = self._read_mhz() is not None  # a machine that shows no frequency is not asked again

    def _read_mhz(self) -> Optional[float]:
        return read_cpu_mhz(self._cpus, self.paths.sysfs_cpu, self.paths.cpuinfo)

    def begin(self) -> Optional[tuple[int, int]]:
        return read_cpu_ticks(self.paths.stat)

    def end(self, start: Optional[tuple[int, int]], own_cpu_seconds: float) -> dict:
        """The window's conditions: see the module docstring; unreadable parts are None."""
        stop = read_cpu_ticks(self.paths.stat)
        share = machine = capacity = None
        if start is not None and stop is not None:
            busy, total = stop[0] - start[0], stop[1] - start[1]
            share = other_cpu_share(busy, total, own_cpu_seconds, self._tick)
            machine, capacity = busy / self._tick, total / self._tick
        out = {"load_avg_1m": read_loadavg(self.paths.loadavg),
               "other_cpu_share": None if share is None else round(share, 4),
               "machine_cpu_s": machine, "capacity_cpu_s": capacity,
               "cpu_mhz": self._read_mhz() if self._mhz else None,
               "torch_threads": self._threads(), "process_threads": read_process_threads(self.paths.status)}
        if self._gpu is not None:
            out["gpu"] = gpu_neighbours(*self._gpu, {os.getpid()})
        return out


def _torch_threads() -> Optional[int]:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # noqa: BLE001 - a description must never break metering
        return None


def combine_conditions(parts: list[Optional[dict]], own_cpu_seconds: float) -> Optional[dict]:
    """One window's conditions for several consecutive ones: CPU times added and the other-processes
    share recomputed from them; load average and frequency the highest seen; None when none had any."""
    known = [p for p in parts if p]
    if not known:
        return None
    out: dict[str, Any] = {"windows": len(parts)}
    if all(p.get("machine_cpu_s") is not None for p in known) and len(known) == len(parts):
        machine = sum(p["machine_cpu_s"] for p in known)
        capacity = sum(p["capacity_cpu_s"] for p in known)
        out["machine_cpu_s"], out["capacity_cpu_s"] = machine, capacity
        out["other_cpu_share"] = round(min(1.0, max(0.0, (machine - own_cpu_seconds) / capacity)), 4) \
            if capacity > 0 else None
    else:
        out["other_cpu_share"] = None
    for key in ("load_avg_1m", "cpu_mhz", "torch_threads", "process_threads"):
        values = [p[key] for p in known if p.get(key) is not None]
        out[key] = max(values) if values else None
    return out
