"""Zeus and CodeCarbon adapters: behaviour with fakes, and with the real packages when installed."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import pytest

from dagrad.energy import build_meter
from dagrad.energy.codecarbon_backend import CodeCarbonBackend
from dagrad.utils.errors import ConfigError


@dataclass
class FakeMeasurement:
    time: float
    gpu_energy: dict = field(default_factory=dict)
    cpu_energy: dict | None = None
    dram_energy: dict | None = None


class FakeZeusMonitor:
    """ZeusMonitor-like: windows by name; `result` is what end_window returns."""

    def __init__(self, gpu_indices=None, approx_instant_energy=False):
        self.gpu_indices = gpu_indices or []
        self.cpu_indices = []
        self.open: set[str] = set()
        self.result = FakeMeasurement(1.0)

    def begin_window(self, key):
        assert key not in self.open
        self.open.add(key)

    def end_window(self, key):
        self.open.remove(key)
        return self.result


def test_zeus_with_no_devices_reports_none_with_reason_not_zero(fk):
    monitors = []
    factory = lambda **kw: monitors.append(FakeZeusMonitor(**kw)) or monitors[-1]  # noqa: E731
    meter = build_meter(fk.Cfg(backend="zeus"), "cuda", zeus_factory=factory)
    with meter.window("w") as r:
        pass
    assert r.components["cpu"].joules is None and "RAPL" in r.components["cpu"].params["reason"]
    assert r.components["gpu"].joules is None and r.components["gpu"].source == "unavailable:zeus"
    assert r.joules is None


def test_zeus_sums_devices_and_keeps_dram_separate(fk):
    mon = FakeZeusMonitor()
    meter = build_meter(fk.Cfg(backend="zeus"), "cuda:1", zeus_factory=lambda **kw: mon)
    mon.result = FakeMeasurement(2.0, gpu_energy={0: 10.0, 1: 5.5}, cpu_energy={0: 3.0}, dram_energy={0: 0.5})
    with meter.window("outer") as outer:
        with meter.window("inner"):  # nested windows get distinct Zeus names
            pass
    assert {k: (c.joules, c.source) for k, c in outer.components.items()} == {
        "gpu": (15.5, "measured:zeus"), "cpu": (3.0, "measured:zeus"), "dram": (0.5, "measured:zeus")}


class _Hw:
    def __init__(self, mode=None):
        self._mode = mode


CPU = type("CPU", (_Hw,), {})
RAM = type("RAM", (_Hw,), {})
GPU = type("GPU", (_Hw,), {})


@dataclass
class FakeEmissions:
    cpu_energy: float
    gpu_energy: float
    ram_energy: float


class FakeTracker:
    def __init__(self, hardware, **kwargs):
        self.kwargs = kwargs
        self._hardware = hardware
        self.stopped = False

    def start_task(self, name):
        self.task = name

    def stop_task(self, name):
        assert name == self.task
        return FakeEmissions(cpu_energy=1e-6, gpu_energy=2e-6, ram_energy=5e-6)  # kWh

    def stop(self):
        self.stopped = True


def test_codecarbon_keeps_ram_separate_and_labels_by_mode(fk):
    trackers = []

    def factory(**kw):
        trackers.append(FakeTracker([RAM(), CPU("constant")], **kw))
        return trackers[-1]

    meter = build_meter(fk.Cfg(backend="codecarbon"), "cpu", codecarbon_factory=factory)
    assert trackers[0].kwargs["save_to_file"] is False and trackers[0].kwargs["country_iso_code"] == "USA"
    with meter.window("w") as r:
        with pytest.raises(RuntimeError, match="cannot nest"):
            with meter.window("inner"):
                pass
    assert r.components["cpu"].joules == pytest.approx(3.6)  # 1e-6 kWh
    assert r.components["cpu"].source == "estimated:codecarbon"
    assert r.components["ram"].joules == pytest.approx(18.0)
    assert r.components["ram"].source == "estimated:codecarbon-ram"
    assert "gpu" not in r.components
    meter.close()
    assert trackers[0].stopped

    rapl = CodeCarbonBackend("cuda", tracker_factory=lambda **kw: FakeTracker([RAM(), CPU("intel_rapl"), GPU()]))
    out = rapl.end(rapl.begin(), 1.0, 1.0)
    assert out["cpu"].source == "measured:codecarbon-intel_rapl"
    assert out["gpu"].source == "measured:codecarbon-nvml" and out["gpu"].joules == pytest.approx(7.2)


@pytest.mark.parametrize("name", ["zeus", "codecarbon"])
def test_missing_package_is_a_clear_config_error(fk, name):
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed")
    with pytest.raises(ConfigError, match=f"{name} is not installed"):
        build_meter(fk.Cfg(backend=name), "cpu")


def test_real_zeus_without_devices_is_not_zero(fk):
    pytest.importorskip("zeus", reason="zeus not installed (optional, ~384 MB)")
    meter = build_meter(fk.Cfg(backend="zeus"), "cpu")
    with meter.window("w") as r:
        sum(range(100000))
    assert r.joules is None or r.joules > 0


def test_real_codecarbon_reports_separate_ram(fk, tmp_path, monkeypatch):
    pytest.importorskip("codecarbon", reason="codecarbon not installed (optional, ~249 MB)")
    monkeypatch.chdir(tmp_path)
    meter = build_meter(fk.Cfg(backend="codecarbon"), "cpu")
    with meter.window("w") as r:
        sum(range(100000))
    meter.close()
    assert "ram" in r.components and r.components["ram"].source.startswith("estimated:")
    assert not (tmp_path / "emissions.csv").exists()
