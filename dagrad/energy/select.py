"""Energy backends by name: each entry is a recipe that picks the meter's parts for a device, and
records why the others were not used.

- auto: GPU layer = NVML for the one GPU the job runs on (`cuda:N`; a CPU job meters no GPU, whatever
  its node has; a CUDA run whose GPU cannot be read gets a gpu component with joules=None, never 0);
  CPU layer = RAPL when readable (attributed by CPU-time share when jobs share the node, see rapl.py),
  else the CPU-time estimate, announced by one warning per meter.
- nvml, rapl: like auto, but insist that their backend works (ConfigError otherwise).
- estimate, zeus, codecarbon: only that backend.

Options live with each backend (`energy.backends.<name>.<option>`), e.g.
`energy.backends.estimate.watts_per_thread=6`; auto reads the options of the backends it combines (its
entry's `combines`: those enter the run's identity). A plugin registers a recipe
`fn(ctx: MeterContext) -> list[Backend]` in `BACKENDS`; an entry builds through
`entry.build(options_by_backend, device=..., read_package=...)`, which returns what the recipe picked.

`resolve_energy` turns an `energy:` config into `EnergySettings` once per run (dagrad.config.experiment);
`build_meter` builds the Meter from them and checks nothing again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Optional

from dagrad.energy.backend import Backend, BackendUnavailable, UnavailableComponent
from dagrad.energy.codecarbon_backend import CodeCarbonBackend
from dagrad.energy.conditions import ConditionsProbe
from dagrad.energy.cputime import CpuClock
from dagrad.energy.estimate import EstimateBackend
from dagrad.energy.hardware import affinity_cpus, describe_hardware
from dagrad.energy.meter import Meter
from dagrad.energy.nvml import NvmlBackend
from dagrad.energy.rapl import DEFAULT_ROOT, RaplBackend, _read_text
from dagrad.energy.zeus_backend import ZeusBackend
from dagrad.utils.errors import ConfigError
from dagrad.registry import Entry, Option, Registry, Resolved


class EnergyEstimatedWarning(UserWarning):
    """Energy figures are estimates (no hardware counter was readable)."""


def gpu_visible() -> bool:
    """True when torch sees a CUDA GPU (counted through NVML; does not initialise CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() > 0
    except Exception:  # noqa: BLE001
        return False


@dataclass
class MeterContext:
    """What a recipe needs: the device, every backend's resolved options, and (in tests) fakes."""

    device: str
    requested: str
    options: Mapping[str, dict]
    nvml: Any = None
    gpu_is_visible: Optional[bool] = None
    rapl_root: str = DEFAULT_ROOT
    rapl_reader: Callable[[str], str] = _read_text
    zeus_factory: Optional[Callable[..., Any]] = None
    codecarbon_factory: Optional[Callable[..., Any]] = None
    rejected: dict[str, str] = field(default_factory=dict)
    read_package: bool = True  # False: another process of this job reads the node's RAPL (dagrad.run.distributed)

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def opts(self, backend: str) -> dict:
        return dict(self.options.get(backend, {}))


class Picked(NamedTuple):
    """What a recipe picked for a device: the backends, and why each other one was not used."""

    backends: list[Backend]
    rejected: dict[str, str]


def _build(entry: Entry, options: dict[str, dict], device: str, read_package: bool = True,
           **hardware: Any) -> Picked:
    """Run the recipe for `device` with every backend's options (`hardware`: MeterContext's fakes in tests)."""
    ctx = MeterContext(str(device), entry.name, options, read_package=read_package, **hardware)
    return Picked(entry.load()(ctx), ctx.rejected)


BACKENDS: Registry = Registry("energy backend", "energy.backend", plural="energy_backends",
                              builtins="dagrad.energy.select", options_key="energy.backends.{name}", builder=_build)


def _cuda_sync(device: str) -> Callable[[], None] | None:
    """Synchronise the job's CUDA device before counter reads, so queued kernels count in their window."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    index = int(device.split(":", 1)[1]) if ":" in device else None

    def sync() -> None:
        torch.cuda.synchronize(index)

    return sync


def _estimate(ctx: MeterContext) -> EstimateBackend:
    return EstimateBackend(**ctx.opts("estimate"))


def _own_gpu(device: str) -> str:
    """`cuda:N` for the GPU a job on `device` uses: a bare 'cuda' is torch's current device (0 when CUDA
    is not initialised), so a job never meters the other GPUs of its node."""
    if ":" in device:
        return device
    try:
        import torch

        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA runtime: the first visible GPU
        index = 0
    return f"cuda:{index}"


def _gpu_layer(ctx: MeterContext, insist: bool) -> list[Backend]:
    if not ctx.cuda:
        visible = ctx.gpu_is_visible if ctx.gpu_is_visible is not None else gpu_visible()
        why = f"device is {ctx.device!r}: the job trains on no GPU" + (
            " (GPUs are visible, but other jobs' use of them is not this job's energy)" if visible else
            " and no CUDA GPU is visible")
        if insist:
            raise ConfigError(f"energy.backend=nvml but {why}; use backend=auto or estimate")
        ctx.rejected["nvml"] = why
        return []
    try:
        device = _own_gpu(ctx.device)
        return [NvmlBackend(ctx.nvml, device=device, synchronize=_cuda_sync(device), **ctx.opts("nvml"))]
    except BackendUnavailable as exc:
        if insist:
            raise ConfigError(f"energy.backend=nvml but NVML is unusable: {exc}; use backend=auto") from exc
        ctx.rejected["nvml"] = str(exc)
        return [UnavailableComponent("gpu", "unavailable:nvml", str(exc))] if ctx.cuda else []


def _cpu_layer(ctx: MeterContext, insist: bool) -> list[Backend]:
    try:
        backend = RaplBackend(ctx.rapl_root, read_text=ctx.rapl_reader, **ctx.opts("rapl"))
        if not ctx.read_package:  # the node's package is read once, by its first process
            backend.close()
            ctx.rejected["rapl"] = "read once per node, by the job's first process on this node (local rank 0)"
            return []
        return [backend]
    except BackendUnavailable as exc:
        if insist:
            raise ConfigError(f"energy.backend=rapl but RAPL is unusable: {exc}; use backend=auto") from exc
        ctx.rejected["rapl"] = str(exc)
        estimate = _estimate(ctx)
        warnings.warn(
            f"energy: no readable CPU energy counter ({exc}); CPU energy is ESTIMATED as "
            f"CPU-seconds x {estimate.watts_per_thread:g} W per thread (source estimated:cpu-time)",
            EnergyEstimatedWarning, stacklevel=3)
        return [estimate]


def auto(ctx: MeterContext) -> list[Backend]:
    """NVML for the GPU when there is one, RAPL for the CPU when readable, else the CPU-time estimate."""
    return _gpu_layer(ctx, insist=False) + _cpu_layer(ctx, insist=False)


def nvml(ctx: MeterContext) -> list[Backend]:
    """As auto, but the GPU must be readable through NVML."""
    return _gpu_layer(ctx, insist=True) + _cpu_layer(ctx, insist=False)


def rapl(ctx: MeterContext) -> list[Backend]:
    """As auto, but the CPU must be readable through RAPL."""
    return _gpu_layer(ctx, insist=False) + _cpu_layer(ctx, insist=True)


def estimate(ctx: MeterContext) -> list[Backend]:
    """CPU-seconds x watts per thread only; a CUDA GPU is reported as unmeasured."""
    ctx.rejected.update(nvml="energy.backend=estimate", rapl="energy.backend=estimate")
    gpu = [UnavailableComponent("gpu", "unavailable:estimate", "energy.backend=estimate does not measure GPUs")]
    return (gpu if ctx.cuda else []) + [_estimate(ctx)]


def zeus(ctx: MeterContext) -> list[Backend]:
    """Zeus (ML.ENERGY) windows; devices it cannot see are reported as unknown, not 0 J."""
    ctx.rejected.update(nvml="energy.backend=zeus", rapl="energy.backend=zeus")
    try:
        return [ZeusBackend(_own_gpu(ctx.device) if ctx.cuda else ctx.device, monitor_factory=ctx.zeus_factory)]
    except BackendUnavailable as exc:
        raise ConfigError(f"energy.backend=zeus is unusable: {exc}; use backend=auto") from exc


def codecarbon(ctx: MeterContext) -> list[Backend]:
    """CodeCarbon's offline tracker; its constant RAM term is kept as a separate `ram` component."""
    ctx.rejected.update(nvml="energy.backend=codecarbon", rapl="energy.backend=codecarbon")
    try:
        return [CodeCarbonBackend(ctx.device, tracker_factory=ctx.codecarbon_factory, **ctx.opts("codecarbon"))]
    except BackendUnavailable as exc:
        raise ConfigError(f"energy.backend=codecarbon is unusable: {exc}; use backend=auto") from exc


#: the backends whose options auto and its kin read (and the identity of a run holds)
_GPU_AND_CPU = ("nvml", "estimate")
BACKENDS.register("auto", auto, combines=_GPU_AND_CPU)
BACKENDS.register("nvml", nvml, combines=_GPU_AND_CPU, options={
    "poll_hz": Option(10.0, float, "power sampling rate on GPUs without an energy counter", low=0.0, low_open=True)})
BACKENDS.register("rapl", rapl, combines=_GPU_AND_CPU, options={
    "attribution": Option("auto", str, "node: the whole package's energy; cpu_share: the job's share of it by CPU "
                          "time (labelled attributed:rapl); auto: cpu_share when a sweep runs several workers "
                          "on the node", choices=("auto", "node", "cpu_share"))})
BACKENDS.register("estimate", estimate, options={
    "watts_per_thread": Option(4.0, float, "W per busy thread (CodeCarbon's default for an unknown CPU)", low=0.0,
                               low_open=True),
    "cpu_tdp_w": Option(None, float, "the CPU's TDP; then W per thread = TDP / threads", low=0.0, low_open=True,
                        nullable=True)})
BACKENDS.register("zeus", zeus)
BACKENDS.register("codecarbon", codecarbon, options={
    "country_iso_code": Option("USA", str, "grid region for CodeCarbon's offline tracker"),
    "measure_power_secs": Option(1.0, float, "CodeCarbon's sampling period", low=0.0, low_open=True)})


def backend_options(given: Optional[Mapping[str, Any]]) -> dict[str, dict]:
    """`energy.backends` checked: every named backend exists and its options fit; defaults filled in."""
    given = dict(given or {})
    for name, options in given.items():
        if not isinstance(options, Mapping):
            raise ConfigError(f"energy.backends.{name}: expected a mapping of that backend's options, got {options!r}")
        BACKENDS.get(name)  # an unknown backend is named with the choices
    return {e.name: e.resolve(given.get(e.name), f"energy.backends.{e.name}") for e in BACKENDS.entries()}


@dataclass(frozen=True)
class EnergySettings:
    """A run's metering resolved once: the backend's recipe with every backend's checked options (by name),
    and the settings the schema checked."""

    backend: Resolved
    grid_intensity_g_per_kwh: Optional[float] = None
    count_flops: bool = True
    idle_baseline_s: float = 0.0

    def combined_options(self) -> dict[str, dict]:
        """The options of the backends the recipe combines (its entry's `combines`, else itself): what the
        run's identity holds."""
        used = self.backend.entry.info.get("combines", (self.backend.name,))
        return {name: opts for name, opts in self.backend.options.items() if name in used}


def resolve_energy(cfg: Any) -> EnergySettings:
    """An `energy:` config (an EnergyConfig the schema checked) resolved: the backend named, every backend's
    options checked and filled in."""
    entry = BACKENDS.get(cfg.backend)
    return EnergySettings(Resolved(entry, backend_options(getattr(cfg, "backends", None))),
                          getattr(cfg, "grid_intensity_g_per_kwh", None), getattr(cfg, "count_flops", True),
                          getattr(cfg, "idle_baseline_s", 0.0))


def build_meter(energy: EnergySettings, device: str = "cpu", *, read_package: bool = True,
                cpu_clock: CpuClock | None = None, **hardware: Any) -> Meter:
    """A Meter for resolved `energy` settings on `device`. `read_package=False`: this process is not its
    node's first process of a multi-process job, so it leaves the node's RAPL counters to that one (see
    dagrad.energy.ranks). `hardware` (MeterContext's nvml, gpu_is_visible, rapl_root, rapl_reader,
    zeus_factory, codecarbon_factory) and `cpu_clock` inject fakes in tests."""
    requested = energy.backend.name
    chosen, rejected = energy.backend.build(device=str(device), read_package=read_package, **hardware)
    if not chosen and read_package:
        raise ConfigError(f"energy.backend={requested} measures nothing on {device}; use backend=auto")
    gpu_names = next((b.gpu_names() for b in chosen if isinstance(b, NvmlBackend)), None)
    selection = {
        "requested": requested,
        "selected": [b.name for b in chosen],
        "not_selected": rejected,
        "estimated": any(isinstance(b, EstimateBackend) for b in chosen),
    }
    gpu = next((b.neighbour_source() for b in chosen if isinstance(b, NvmlBackend)), None)
    return Meter(chosen, cpu_clock or CpuClock(), energy.grid_intensity_g_per_kwh, selection,
                 describe_hardware(str(device), gpu_names), ConditionsProbe(gpu=gpu, cpus=sorted(affinity_cpus())))
