"""Choose energy backends from the configuration and the hardware, and record why.

auto: GPU layer = NVML when the device is CUDA or a GPU is visible (a CUDA run whose GPU cannot be
read gets a gpu component with joules=None, never 0); CPU layer = RAPL when readable, else the
CPU-time estimate, announced by one warning per meter. `nvml` and `rapl` behave like auto but
insist that their backend works (ConfigError otherwise). `estimate`, `zeus`, `codecarbon` use only
that backend.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from dagrad.errors import ConfigError
from dagrad.energy.backend import Backend, BackendUnavailable, UnavailableComponent
from dagrad.energy.codecarbon_backend import CodeCarbonBackend
from dagrad.energy.cputime import CpuClock
from dagrad.energy.estimate import EstimateBackend
from dagrad.energy.hardware import describe_hardware
from dagrad.energy.meter import Meter
from dagrad.energy.nvml import NvmlBackend
from dagrad.energy.rapl import DEFAULT_ROOT, RaplBackend, _read_text
from dagrad.energy.zeus_backend import ZeusBackend

BACKENDS = ("auto", "nvml", "rapl", "estimate", "zeus", "codecarbon")


class EnergyEstimatedWarning(UserWarning):
    """Energy figures are estimates (no hardware counter was readable)."""


def gpu_visible() -> bool:
    """True when torch sees a CUDA GPU (counted through NVML; does not initialise CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() > 0
    except Exception:  # noqa: BLE001
        return False


def _check(cfg: Any) -> None:
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"energy.backend must be one of {', '.join(BACKENDS)}; got {cfg.backend!r}")
    if not cfg.watts_per_thread > 0:
        raise ConfigError(f"energy.watts_per_thread must be > 0, got {cfg.watts_per_thread!r}")
    if cfg.cpu_tdp_w is not None and not cfg.cpu_tdp_w > 0:
        raise ConfigError(f"energy.cpu_tdp_w must be > 0 or null, got {cfg.cpu_tdp_w!r}")
    if cfg.grid_intensity_g_per_kwh is not None and not cfg.grid_intensity_g_per_kwh >= 0:
        raise ConfigError(f"energy.grid_intensity_g_per_kwh must be >= 0 or null, got {cfg.grid_intensity_g_per_kwh!r}")
    if not cfg.nvml_poll_hz > 0:
        raise ConfigError(f"energy.nvml_poll_hz must be > 0, got {cfg.nvml_poll_hz!r}")


def _cuda_sync(device: str) -> Callable[[], None] | None:
    """Synchronise every CUDA device before counter reads, when the run uses CUDA."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None

    def sync() -> None:
        for i in range(torch.cuda.device_count()):
            torch.cuda.synchronize(i)

    return sync


def build_meter(
    cfg: Any,
    device: str = "cpu",
    *,
    nvml: Any = None,
    gpu_is_visible: bool | None = None,
    rapl_root: str = DEFAULT_ROOT,
    rapl_reader: Callable[[str], str] = _read_text,
    zeus_factory: Callable[..., Any] | None = None,
    codecarbon_factory: Callable[..., Any] | None = None,
    cpu_clock: CpuClock | None = None,
) -> Meter:
    """A Meter for `cfg` (an EnergyConfig-like object) on `device`; keyword extras inject fakes in tests."""
    _check(cfg)
    device = str(device)
    kind = cfg.backend
    chosen: list[Backend] = []
    rejected: dict[str, str] = {}

    def estimate() -> EstimateBackend:
        return EstimateBackend(cfg.watts_per_thread, cfg.cpu_tdp_w)

    cuda = device.startswith("cuda")

    if kind in ("auto", "nvml", "rapl"):
        visible = gpu_is_visible if gpu_is_visible is not None else (cuda or gpu_visible())
        if cuda or visible:
            try:
                chosen.append(NvmlBackend(nvml, device=device if cuda else "cuda", poll_hz=cfg.nvml_poll_hz,
                                          synchronize=_cuda_sync(device)))
            except BackendUnavailable as exc:
                if kind == "nvml":
                    raise ConfigError(f"energy.backend=nvml but NVML is unusable: {exc}; use backend=auto") from exc
                rejected["nvml"] = str(exc)
                if cuda:
                    chosen.append(UnavailableComponent("gpu", "unavailable:nvml", str(exc)))
        else:
            why = f"device is {device!r} and no CUDA GPU is visible"
            if kind == "nvml":
                raise ConfigError(f"energy.backend=nvml but {why}; use backend=auto or estimate")
            rejected["nvml"] = why
        try:
            chosen.append(RaplBackend(rapl_root, read_text=rapl_reader))
        except BackendUnavailable as exc:
            if kind == "rapl":
                raise ConfigError(f"energy.backend=rapl but RAPL is unusable: {exc}; use backend=auto") from exc
            rejected["rapl"] = str(exc)
            chosen.append(estimate())
            warnings.warn(
                f"energy: no readable CPU energy counter ({exc}); CPU energy is ESTIMATED as "
                f"CPU-seconds x {chosen[-1].watts_per_thread:g} W per thread (source estimated:cpu-time)",
                EnergyEstimatedWarning,
                stacklevel=2,
            )
    elif kind == "estimate":
        chosen.append(estimate())
        rejected.update(nvml="energy.backend=estimate", rapl="energy.backend=estimate")
        if cuda:
            chosen.insert(0, UnavailableComponent("gpu", "unavailable:estimate",
                                                  "energy.backend=estimate does not measure GPUs"))
    else:
        try:
            if kind == "zeus":
                chosen.append(ZeusBackend(device, monitor_factory=zeus_factory))
            else:
                chosen.append(CodeCarbonBackend(
                    device,
                    country_iso_code=getattr(cfg, "country_iso_code", None) or "USA",
                    measure_power_secs=float(getattr(cfg, "measure_power_secs", None) or 1.0),
                    tracker_factory=codecarbon_factory,
                ))
        except BackendUnavailable as exc:
            raise ConfigError(f"energy.backend={kind} is unusable: {exc}; use backend=auto") from exc
        rejected.update(nvml=f"energy.backend={kind}", rapl=f"energy.backend={kind}")

    gpu_names = next((b.gpu_names() for b in chosen if isinstance(b, NvmlBackend)), None)
    selection = {
        "requested": kind,
        "selected": [b.name for b in chosen],
        "not_selected": rejected,
        "estimated": any(isinstance(b, EstimateBackend) for b in chosen),
    }
    return Meter(chosen, cpu_clock or CpuClock(), cfg.grid_intensity_g_per_kwh, selection,
                 describe_hardware(device, gpu_names))
