"""NVIDIA GPU energy through NVML (the `nvidia-ml-py` package, imported lazily).

Volta and newer GPUs expose a cumulative energy counter (mJ since driver load): we read it at window
edges after synchronising CUDA, so queued kernels are charged to the window that launched them.
Older GPUs (or a counter that refuses to read) are sampled with nvmlDeviceGetPowerUsage (mW) by a
background thread at `poll_hz` plus one sample at each window edge, and the samples are
trapezoid-integrated. The counter updates roughly every 100 ms, so windows much shorter than that
can read 0 J; epoch-length windows are unaffected.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.nvml_devices import VisibleGpu, _text, resolve_visible
from dagrad.energy.reading import ComponentEnergy

ENERGY_SOURCE = "measured:nvml-energy"
POWER_SOURCE = "measured:nvml-power"
_ENV_DEFAULT = object()


class PowerIntegrator:
    """Cumulative joules from (time s, power W) samples by the trapezoid rule."""

    def __init__(self) -> None:
        self.joules = 0.0
        self._t: float | None = None
        self._w = 0.0

    def add(self, t: float, watts: float) -> float:
        if self._t is not None and t > self._t:
            self.joules += 0.5 * (watts + self._w) * (t - self._t)
        if self._t is None or t >= self._t:
            self._t, self._w = t, watts
        return self.joules


@dataclass
class _Gpu:
    visible: VisibleGpu
    name: str
    mode: str  # "energy-counter" or "power-sampling"
    integrator: PowerIntegrator = field(default_factory=PowerIntegrator)


def _cuda_index(device: str) -> int | None:
    """N for 'cuda:N', None for 'cuda' (all visible GPUs) or non-CUDA devices."""
    if ":" in device:
        tail = device.split(":", 1)[1]
        if not tail.isdigit():
            raise ValueError(f"device must look like 'cuda' or 'cuda:N', got {device!r}")
        return int(tail)
    return None


class NvmlBackend:
    """Component "gpu": summed energy of the GPUs this process uses: `cuda:N` meters that one GPU; a bare
    'cuda' meters every visible GPU (the engine always passes its own device, `cuda:N`)."""

    name = "nvml"

    def __init__(
        self,
        nvml: Any = None,
        device: str = "cuda",
        poll_hz: float = 10.0,
        visible_devices: Any = _ENV_DEFAULT,
        cuda_uuids: Callable[[], list[str]] | None = None,
        synchronize: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if nvml is None:
            try:
                import pynvml as nvml  # nvidia-ml-py
            except ImportError as exc:
                raise BackendUnavailable("nvidia-ml-py (pynvml) is not installed") from exc
        self._nvml = nvml
        self._error = getattr(nvml, "NVMLError", Exception)
        if not poll_hz > 0:
            raise ValueError(f"energy.nvml_poll_hz must be > 0, got {poll_hz!r}")
        self.poll_hz = float(poll_hz)
        self._clock = clock
        self._sync = synchronize
        try:
            nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - any failure means "no usable driver"
            raise BackendUnavailable(f"NVML init failed: {type(exc).__name__}: {exc}") from exc
        try:
            env = os.environ.get("CUDA_VISIBLE_DEVICES") if visible_devices is _ENV_DEFAULT else visible_devices
            visible, self.notes = resolve_visible(nvml, env, cuda_uuids)
            wanted = _cuda_index(device)
            if wanted is not None:
                if wanted >= len(visible):
                    raise BackendUnavailable(f"{device} requested but only {len(visible)} GPU(s) visible to NVML")
                visible = [visible[wanted]]
            if not visible:
                raise BackendUnavailable(f"NVML sees no usable GPU (CUDA_VISIBLE_DEVICES={env!r})")
            self.gpus = [self._probe(v) for v in visible]
        except BackendUnavailable:
            self._shutdown()
            raise
        except Exception as exc:  # noqa: BLE001
            self._shutdown()
            raise BackendUnavailable(f"NVML device query failed: {type(exc).__name__}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if any(g.mode == "power-sampling" for g in self.gpus):
            try:  # the first sample anchors the integral: a GPU whose power cannot be read is not measured
                self._sample_power()
            except Exception as exc:  # noqa: BLE001 - the binding raises several NVMLError subclasses
                self._shutdown()
                raise BackendUnavailable(f"NVML power read failed: {type(exc).__name__}: {exc}") from exc
            self._thread = threading.Thread(target=self._poll, name="dagrad-nvml-power", daemon=True)
            self._thread.start()

    def _probe(self, v: VisibleGpu) -> _Gpu:
        nvml = self._nvml
        name = _text(nvml.nvmlDeviceGetName(v.handle))
        try:
            arch = int(nvml.nvmlDeviceGetArchitecture(v.handle))
        except Exception:  # noqa: BLE001 - unknown architecture: do not trust the counter
            arch = -1
        mode = "power-sampling"
        if arch >= int(getattr(nvml, "NVML_DEVICE_ARCH_VOLTA", 5)):
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(v.handle)
                mode = "energy-counter"
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"cuda:{v.cuda_index} energy counter unreadable ({exc}); sampling power")
        return _Gpu(v, name, mode)

    def _sample_power(self) -> None:
        with self._lock:
            for g in self.gpus:
                if g.mode == "power-sampling":
                    watts = self._nvml.nvmlDeviceGetPowerUsage(g.visible.handle) / 1000.0
                    g.integrator.add(self._clock(), watts)

    def _poll(self) -> None:
        period = 1.0 / self.poll_hz
        while not self._stop.wait(period):
            try:
                self._sample_power()
            except Exception as exc:  # noqa: BLE001 - keep polling; the edge reads report failures
                self.last_error = f"power poll failed: {exc}"

    def _snapshot(self) -> list[float]:
        """Per GPU: the counter in mJ (an int, differenced exactly) or the integrated power in J."""
        if self._sync is not None:
            self._sync()
        if self._thread is not None:
            self._sample_power()
        values = []
        for g in self.gpus:
            if g.mode == "energy-counter":
                values.append(self._nvml.nvmlDeviceGetTotalEnergyConsumption(g.visible.handle))
            else:
                with self._lock:
                    values.append(g.integrator.joules)
        return values

    def begin(self) -> list[float] | str:
        try:
            return self._snapshot()
        except Exception as exc:  # noqa: BLE001
            return f"NVML read failed at window start: {exc}"

    def end(self, start: list[float] | str, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        try:
            if isinstance(start, str):
                raise RuntimeError(start)
            now = self._snapshot()
        except Exception as exc:  # noqa: BLE001
            return {"gpu": ComponentEnergy(None, "unavailable:nvml", {"reason": str(exc)})}
        joules = sum((b - a) / 1000.0 if g.mode == "energy-counter" else b - a
                     for g, a, b in zip(self.gpus, start, now))
        return {"gpu": ComponentEnergy(joules, self.source, self.params())}

    @property
    def source(self) -> str:
        modes = {g.mode for g in self.gpus}
        if modes == {"energy-counter"}:
            return ENERGY_SOURCE
        if modes == {"power-sampling"}:
            return POWER_SOURCE
        return "measured:nvml-energy+nvml-power"

    def params(self) -> dict:
        p: dict[str, Any] = {"devices": [g.visible.cuda_index for g in self.gpus]}
        if any(g.mode == "power-sampling" for g in self.gpus):
            p["power_sampled_devices"] = [g.visible.cuda_index for g in self.gpus if g.mode == "power-sampling"]
            p["poll_hz"] = self.poll_hz
        return p

    def describe(self) -> dict:
        return {
            "source": self.source,
            "gpus": [{"cuda_index": g.visible.cuda_index, "nvml": g.visible.token, "name": g.name,
                      "mode": g.mode} for g in self.gpus],
            "params": self.params(),
            "synchronize": self._sync is not None,
            "notes": list(self.notes),
            "last_error": self.last_error,
        }

    def gpu_names(self) -> list[str]:
        return [g.name for g in self.gpus]

    def neighbour_source(self) -> tuple[Any, Any] | None:
        """(NVML module, handle) of the metered GPU, for the conditions of each window; None for several."""
        return (self._nvml, self.gpus[0].visible.handle) if len(self.gpus) == 1 else None

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a half-initialised library is best effort
            pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self._closed:
            self._closed = True
            self._shutdown()
