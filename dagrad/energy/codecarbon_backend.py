"""Optional adapter for CodeCarbon (`pip install codecarbon`, ~249 MB; not installed by default).

Uses an OfflineEmissionsTracker (no network) with file output disabled, and one CodeCarbon task per
window. CodeCarbon's per-component method is only visible in private attributes, so labels are
derived from them when present: RAPL / NVML readings are "measured:codecarbon-*", its TDP and load
models "estimated:codecarbon". Its RAM figure is a time-proportional constant and is always reported
as a separate "ram" component labelled estimated, never folded into cpu. CO2 is not taken from
CodeCarbon: dagrad computes it from energy.grid_intensity_g_per_kwh like every other backend.
"""

from __future__ import annotations

from typing import Any, Callable

from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.reading import JOULES_PER_KWH, ComponentEnergy

_MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "apple_powermetrics", "windows_emi"}


class CodeCarbonBackend:
    """Components cpu / gpu / ram from CodeCarbon tasks; windows cannot nest (one task at a time)."""

    name = "codecarbon"

    def __init__(
        self,
        device: str = "cpu",
        country_iso_code: str = "USA",
        measure_power_secs: float = 1.0,
        tracker_factory: Callable[..., Any] | None = None,
    ) -> None:
        if tracker_factory is None:
            try:
                from codecarbon import OfflineEmissionsTracker
            except ImportError as exc:
                raise BackendUnavailable("codecarbon is not installed (pip install codecarbon)") from exc
            tracker_factory = OfflineEmissionsTracker
        self.device = device
        self.params = {"country_iso_code": country_iso_code, "measure_power_secs": measure_power_secs}
        try:
            self.tracker = tracker_factory(
                country_iso_code=country_iso_code,
                measure_power_secs=measure_power_secs,
                save_to_file=False,
                tracking_mode="process",
                log_level="error",
            )
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"CodeCarbon tracker failed: {type(exc).__name__}: {exc}") from exc
        self._active: str | None = None
        self._n = 0
        self.cpu_mode, self.has_gpu = self._hardware_modes()

    def _hardware_modes(self) -> tuple[str, bool]:
        cpu_mode, has_gpu = "unknown", False
        for hw in getattr(self.tracker, "_hardware", []) or []:
            kind = type(hw).__name__
            if kind == "CPU":
                cpu_mode = str(getattr(hw, "_mode", "unknown"))
            elif kind == "GPU":
                has_gpu = True
        return cpu_mode, has_gpu

    def begin(self) -> str:
        if self._active is not None:
            raise RuntimeError(
                f"energy.backend=codecarbon cannot nest windows ({self._active!r} is open); "
                "use backend auto/rapl/nvml/estimate for nested windows"
            )
        self._n += 1
        self._active = f"dagrad-{self._n}"
        self.tracker.start_task(self._active)
        return self._active

    def end(self, start: str, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        try:
            data = self.tracker.stop_task(start)
        finally:
            self._active = None
        cpu_label = (
            f"measured:codecarbon-{self.cpu_mode}" if self.cpu_mode in _MEASURED_CPU_MODES else "estimated:codecarbon"
        )
        out = {
            "cpu": ComponentEnergy(
                float(data.cpu_energy) * JOULES_PER_KWH, cpu_label, {**self.params, "cpu_mode": self.cpu_mode}
            ),
            "ram": ComponentEnergy(
                float(data.ram_energy) * JOULES_PER_KWH,
                "estimated:codecarbon-ram",
                {"model": "CodeCarbon RAM power model (constant watts x time)"},
            ),
        }
        if self.has_gpu:
            out["gpu"] = ComponentEnergy(float(data.gpu_energy) * JOULES_PER_KWH, "measured:codecarbon-nvml", {})
        elif self.device.startswith("cuda"):
            out["gpu"] = ComponentEnergy(None, "unavailable:codecarbon", {"reason": "CodeCarbon found no GPU"})
        return out

    def describe(self) -> dict:
        return {"cpu_mode": self.cpu_mode, "gpu_tracked": self.has_gpu, "params": dict(self.params),
                "co2": "computed by dagrad from grid_intensity_g_per_kwh, not CodeCarbon's country figure"}

    def close(self) -> None:
        try:
            self.tracker.stop()
        except Exception:  # noqa: BLE001 - stopping an idle tracker is best effort
            pass
