"""Fakes shared by the energy tests (an EnergyConfig stand-in, a pynvml module, a powercap tree),
handed to tests through the `fk` fixture because tests run with --import-mode=importlib."""

from __future__ import annotations

import os
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from dagrad.config.schema import EnergyConfig, from_dict
from dagrad.energy.select import EnergySettings, resolve_energy


#: short keyword -> (backend, option) for the per-backend options of `energy.backends`
_BACKEND_OPTIONS = {"watts_per_thread": ("estimate", "watts_per_thread"), "cpu_tdp_w": ("estimate", "cpu_tdp_w"),
                    "nvml_poll_hz": ("nvml", "poll_hz")}


def Cfg(**given) -> EnergySettings:  # noqa: N802 - reads like the config class it builds
    """An energy config, checked and resolved as a run's Experiment holds it; per-backend options may be
    given flat (watts_per_thread=4 -> backends.estimate)."""
    backends: dict = {}
    for key, (backend, option) in _BACKEND_OPTIONS.items():
        if key in given:
            backends.setdefault(backend, {})[option] = given.pop(key)
    return resolve_energy(from_dict({"backends": backends, **given}, EnergyConfig, "energy."))


class FakeNVMLError(Exception):
    pass


class FakeLibraryNotFound(FakeNVMLError):
    pass


class FakeNotSupported(FakeNVMLError):
    pass


@dataclass
class FakeGpu:
    uuid: str
    name: str = "Fake V100"
    arch: int = 5  # NVML_DEVICE_ARCH_VOLTA
    energy_mj: int = 1_000_000
    power: Callable[[float], float] = lambda t: 100.0  # watts as a function of clock time
    compute_pids: tuple = ()  # pids of the compute processes on this GPU
    utilisation: int = 0  # percent


class FakeNvml:
    """The subset of pynvml that NvmlBackend uses, backed by FakeGpu records."""

    NVML_DEVICE_ARCH_VOLTA = 5
    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[FakeGpu], init_error: Exception | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.clock = clock
        self.power_reads = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        if not 0 <= i < len(self.gpus):
            raise FakeNVMLError("Invalid Argument")
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        for i, g in enumerate(self.gpus):
            if g.uuid == uuid:
                return i
        raise FakeNVMLError("Not Found")

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return self.gpus[h].uuid

    def nvmlDeviceGetName(self, h: int) -> str:
        return self.gpus[h].name

    def nvmlDeviceGetArchitecture(self, h: int) -> int:
        return self.gpus[h].arch

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if self.gpus[h].arch < self.NVML_DEVICE_ARCH_VOLTA:
            raise FakeNotSupported("Not Supported")
        return self.gpus[h].energy_mj

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list:
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=0) for pid in self.gpus[h].compute_pids]

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(gpu=self.gpus[h].utilisation, memory=0)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self.power_reads += 1
        return int(round(self.gpus[h].power(self.clock()) * 1000))


def write_zone(root: Path, entry: str, name: str, energy_uj: int, max_uj: int = 262_143_328_850) -> Path:
    """One powercap zone directory (flat, as /sys/class/powercap lists its symlinks)."""
    d = root / entry
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(root: Path, entry: str, energy_uj: int) -> None:
    (root / entry / "energy_uj").write_text(f"{energy_uj}\n")


def rapl_tree(root: Path, dram: bool = True) -> Path:
    """A client-style tree: package-0 with core/uncore (and dram), a psys zone, and an mmio duplicate."""
    (root / "intel-rapl").mkdir(parents=True)  # the control-type directory itself has no counter
    write_zone(root, "intel-rapl:0", "package-0", 10_000_000)
    write_zone(root, "intel-rapl:0:0", "core", 20_000_000)
    write_zone(root, "intel-rapl:0:1", "uncore", 30_000_000)
    if dram:
        write_zone(root, "intel-rapl:0:2", "dram", 40_000_000)
    write_zone(root, "intel-rapl:1", "psys", 50_000_000)
    write_zone(root, "intel-rapl-mmio:0", "package-0", 60_000_000)
    return root


def no_rapl(tmp_path: Path) -> str:
    return os.path.join(str(tmp_path), "no-powercap-here")


@pytest.fixture
def fk() -> types.SimpleNamespace:
    """The fakes above as attributes: fk.Cfg, fk.FakeNvml, fk.rapl_tree, ..."""
    return types.SimpleNamespace(**{k: v for k, v in globals().items() if not k.startswith("_")})
