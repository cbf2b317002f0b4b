"""Meter windows, Reading serialisation, CO2, and backend selection order and labels."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from dagrad.energy import ComponentEnergy, EnergyEstimatedWarning, Meter, Reading, build_meter, co2_grams
from dagrad.energy.estimate import EstimateBackend
from dagrad.utils.errors import ConfigError


class ScriptedClock:
    """CPU clock returning scripted values so joules are known exactly."""

    scope_note = "scripted"
    live_children = False

    def __init__(self, values):
        self.values = list(values)

    def seconds(self):
        return self.values.pop(0)


def test_reading_round_trip_and_derived_fields():
    r = Reading("eval", 1.5, 2.25, {
        "gpu": ComponentEnergy(None, "unavailable:nvml", {"reason": "no driver"}),
        "cpu": ComponentEnergy(9.0, "estimated:cpu-time", {"watts_per_thread": 4.0}),
        "dram": ComponentEnergy(1.0, "measured:rapl", {"zones": ("dram",)}),
    }, co2_grams=1.25)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert list(d) == ["name", "seconds", "cpu_seconds", "joules", "co2_grams", "sources", "components"]
    assert d["joules"] == 10.0
    assert d["sources"] == ["estimated:cpu-time", "measured:rapl", "unavailable:nvml"]
    back = Reading.from_dict(d)
    assert back.to_dict() == d
    assert back.components["gpu"].joules is None
    assert Reading("x").joules is None  # nothing readable -> None, never 0
    with pytest.raises(ValueError, match="not a Reading"):
        Reading.from_dict({"name": "x"})


def test_co2_is_exact():
    assert co2_grams(3.6e6, 400.0) == 400.0  # 1 kWh at 400 g/kWh
    assert co2_grams(None, 400.0) is None and co2_grams(10.0, None) is None
    meter = Meter([EstimateBackend(watts_per_thread=5.0)], ScriptedClock([1.0, 1.0 + 720.0]),
                  grid_intensity_g_per_kwh=250.0)
    with meter.window("w") as r:
        pass
    assert r.joules == 3600.0  # 720 CPU-s x 5 W
    assert r.co2_grams == 3600.0 / 3.6e6 * 250.0


def test_window_is_filled_when_the_body_raises_and_windows_nest():
    meter = Meter([EstimateBackend(watts_per_thread=2.0)], ScriptedClock([0.0, 1.0, 3.0, 10.0]))
    with pytest.raises(KeyError):
        with meter.window("outer") as outer:
            with meter.window("inner") as inner:
                pass
            raise KeyError("boom")
    assert inner.cpu_seconds == 2.0 and inner.joules == 4.0
    assert outer.cpu_seconds == 10.0 and outer.joules == 20.0
    meter.close()
    meter.close()
    with pytest.raises(RuntimeError, match="closed"):
        with meter.window("late"):
            pass


def test_auto_prefers_nvml_and_rapl_when_both_work(fk, tmp_path):
    nv = fk.FakeNvml([fk.FakeGpu(uuid="GPU-a")])
    root = fk.rapl_tree(tmp_path / "pc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is estimated: no warning
        meter = build_meter(fk.Cfg(), "cuda", nvml=nv, rapl_root=str(root))
    with meter.window("train") as r:
        nv.gpus[0].energy_mj += 4_000
        fk.set_energy(root, "intel-rapl:0", 10_000_000 + 3_000_000)
    meter.close()
    d = meter.describe()
    assert d["selected"] == ["nvml", "rapl"] and d["not_selected"] == {} and d["estimated"] is False
    assert d["hardware"]["gpus"] == ["Fake V100"]
    assert {k: (c.joules, c.source) for k, c in r.components.items()} == {
        "gpu": (4.0, "measured:nvml-energy"), "cpu": (3.0, "measured:rapl"), "dram": (0.0, "measured:rapl")}


def test_auto_without_counters_warns_once_and_explains(fk, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = build_meter(fk.Cfg(), "cpu", rapl_root=fk.no_rapl(tmp_path), gpu_is_visible=False)
        for name in ("train", "eval", "train"):
            with meter.window(name):
                pass
    estimated = [w for w in caught if issubclass(w.category, EnergyEstimatedWarning)]
    assert len(estimated) == 1 and "ESTIMATED" in str(estimated[0].message)
    d = meter.describe()
    assert d["selected"] == ["estimate"] and d["estimated"] is True
    assert "no CUDA GPU is visible" in d["not_selected"]["nvml"]
    assert "does not exist" in d["not_selected"]["rapl"]


@pytest.mark.skipif(os.path.exists("/sys/class/powercap"), reason="this host has a powercap tree")
def test_this_machine_defaults_to_the_estimate_with_reasons(fk, recwarn):
    from dagrad.energy.select import gpu_visible

    if gpu_visible():
        pytest.skip("a GPU is visible on this host")
    meter = build_meter(fk.Cfg(), "cpu")
    d = meter.describe()
    assert d["selected"] == ["estimate"]
    assert set(d["not_selected"]) == {"nvml", "rapl"}
    assert d["hardware"]["logical_cpus"] == os.cpu_count()


def test_explicit_estimate_on_cuda_marks_gpu_unmeasured(fk, tmp_path):
    meter = build_meter(fk.Cfg(backend="estimate", cpu_tdp_w=40.0), "cuda", rapl_root=fk.no_rapl(tmp_path))
    with meter.window("w") as r:
        pass
    assert r.components["gpu"].joules is None and r.components["gpu"].source == "unavailable:estimate"
    assert r.components["cpu"].params["formula"] == "cpu_seconds * cpu_tdp_w / threads"


@pytest.mark.parametrize("bad", [
    {"backend": "wattmeter"}, {"watts_per_thread": 0}, {"cpu_tdp_w": -5.0},
    {"grid_intensity_g_per_kwh": -1.0}, {"nvml_poll_hz": 0.0},
])
def test_bad_config_is_one_clear_error(fk, tmp_path, bad):
    with pytest.raises(ConfigError, match="energy\\."):
        build_meter(fk.Cfg(**bad), "cpu", rapl_root=fk.no_rapl(tmp_path), gpu_is_visible=False)


def test_nvml_backend_requested_without_gpu_is_a_config_error(fk, tmp_path):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        build_meter(fk.Cfg(backend="nvml"), "cpu", rapl_root=fk.no_rapl(tmp_path), gpu_is_visible=False)
