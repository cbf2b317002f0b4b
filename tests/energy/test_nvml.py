"""NVML backend against a fake pynvml module."""

from __future__ import annotations

import time

import pytest

from dagrad.energy import build_meter
from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.nvml import NvmlBackend, PowerIntegrator
from dagrad.utils.errors import ConfigError


def _gpus(fk, n=3, arch=5):
    return [fk.FakeGpu(uuid=f"GPU-{c * 8}-0000", name=f"Fake GPU {i}", arch=arch, energy_mj=1_000_000 * (i + 1))
            for i, c in enumerate("abcdef"[:n])]


def test_energy_counter_gives_exact_joules_from_mj_deltas(fk):
    nv = fk.FakeNvml(_gpus(fk, 2))
    backend = NvmlBackend(nv, device="cuda", visible_devices=None)
    start = backend.begin()
    nv.gpus[0].energy_mj += 12_345
    nv.gpus[1].energy_mj += 1_000
    out = backend.end(start, 1.0, 1.0)
    backend.close()
    assert out["gpu"].joules == pytest.approx(13.345, rel=1e-12)
    assert out["gpu"].source == "measured:nvml-energy"
    assert out["gpu"].params["devices"] == [0, 1]
    assert nv.power_reads == 0  # no polling thread for counter GPUs
    assert nv.shutdowns == 1


def test_cuda_visible_devices_selects_and_orders_a_subset(fk):
    nv = fk.FakeNvml(_gpus(fk, 3))
    backend = NvmlBackend(nv, device="cuda", visible_devices="2,0")
    start = backend.begin()
    for g, add in zip(nv.gpus, (1_000, 50_000, 300)):
        g.energy_mj += add
    out = backend.end(start, 1.0, 1.0)
    assert out["gpu"].joules == pytest.approx(1.3, rel=1e-12)  # GPUs 2 and 0 only
    assert [g["nvml"] for g in backend.describe()["gpus"]] == ["2", "0"]
    # cuda:1 is the second visible GPU, i.e. NVML device 0
    one = NvmlBackend(nv, device="cuda:1", visible_devices="2,0")
    s1 = one.begin()
    nv.gpus[0].energy_mj += 7_000
    nv.gpus[2].energy_mj += 9_000
    assert one.end(s1, 1.0, 1.0)["gpu"].joules == pytest.approx(7.0)


def test_cuda_visible_devices_uuids_prefixes_and_invalid_entries(fk):
    nv = fk.FakeNvml(_gpus(fk, 3))
    backend = NvmlBackend(nv, visible_devices="GPU-cccccccc-0000,GPU-aaaa")  # full UUID, then a prefix
    assert [g["nvml"] for g in backend.describe()["gpus"]] == ["GPU-cccccccc-0000", "GPU-aaaa"]
    start = backend.begin()
    nv.gpus[1].energy_mj += 99_000  # not visible
    nv.gpus[2].energy_mj += 2_000
    assert backend.end(start, 1.0, 1.0)["gpu"].joules == pytest.approx(2.0)
    stopped = NvmlBackend(nv, visible_devices="1,7,0")  # CUDA stops at the invalid 7
    assert [g["cuda_index"] for g in stopped.describe()["gpus"]] == [0]
    assert any("ignored '7,0'" in n for n in stopped.describe()["notes"])
    with pytest.raises(BackendUnavailable, match="no usable GPU"):
        NvmlBackend(nv, visible_devices="")
    with pytest.raises(BackendUnavailable, match="only 2 GPU"):
        NvmlBackend(nv, device="cuda:2", visible_devices="0,1")


def test_cuda_uuid_mapping_is_used_when_given(fk):
    nv = fk.FakeNvml(_gpus(fk, 3))
    backend = NvmlBackend(nv, visible_devices="0", cuda_uuids=lambda: ["bbbbbbbb-0000"])  # torch omits "GPU-"
    assert [g["nvml"] for g in backend.describe()["gpus"]] == ["GPU-bbbbbbbb-0000"]


def test_power_integrator_is_exact_for_linear_power():
    integ = PowerIntegrator()
    for t in (0.0, 0.5, 1.25, 2.0):
        integ.add(t, 100.0 + 10.0 * t)
    assert integ.joules == pytest.approx(220.0, rel=1e-12)  # integral of 100 + 10 t over [0, 2]
    integ.add(1.0, 500.0)  # a stale sample from the past is ignored
    assert integ.joules == pytest.approx(220.0, rel=1e-12)


def test_pre_volta_gpu_power_is_sampled_and_integrated_deterministically(fk):
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    gpu = fk.FakeGpu(uuid="GPU-p", arch=4, power=lambda t: 100.0 + 10.0 * t)  # Pascal: no counter
    nv = fk.FakeNvml([gpu], clock=clock)
    backend = NvmlBackend(nv, visible_devices=None, poll_hz=50.0, clock=clock)
    start = backend.begin()
    now[0] = 2.0
    out = backend.end(start, 2.0, 0.0)
    backend.close()
    assert out["gpu"].source == "measured:nvml-power"
    assert out["gpu"].joules == pytest.approx(220.0, rel=1e-9)
    assert out["gpu"].params["power_sampled_devices"] == [0]


def test_background_thread_captures_a_power_step_between_edges(fk):
    t_step = [None]

    def power(t):
        return 100.0 if t_step[0] is None or t < t_step[0] else 300.0

    nv = fk.FakeNvml([fk.FakeGpu(uuid="GPU-k", arch=3, power=power)])
    backend = NvmlBackend(nv, visible_devices=None, poll_hz=200.0)
    start = backend.begin()
    t0 = time.monotonic()
    time.sleep(0.1)
    t_step[0] = time.monotonic()
    time.sleep(0.3)
    out = backend.end(start, 0.0, 0.0)
    t1 = time.monotonic()
    backend.close()
    true = 100.0 * (t_step[0] - t0) + 300.0 * (t1 - t_step[0])
    # edge samples alone would give 0.5 * (100 + 300) * 0.4 = 80 J; the polls recover ~ 100*0.1 + 300*0.3
    assert out["gpu"].joules == pytest.approx(true, rel=0.06)
    assert nv.power_reads > 20


def test_missing_driver_is_not_selected_and_a_cuda_run_reports_none(fk, tmp_path):
    nv = fk.FakeNvml([], init_error=fk.FakeLibraryNotFound("NVML Shared Library Not Found"))
    no_rapl = fk.no_rapl(tmp_path)
    with pytest.warns(UserWarning):
        meter = build_meter(fk.Cfg(), "cuda", nvml=nv, rapl_root=no_rapl)
    with meter.window("train") as r:
        pass
    gpu = r.components["gpu"]
    assert gpu.joules is None and gpu.source == "unavailable:nvml"
    assert "Library Not Found" in gpu.params["reason"]
    assert "Library Not Found" in meter.describe()["not_selected"]["nvml"]
    # a CPU run on a machine that reports a GPU but has no driver: no gpu component at all
    with pytest.warns(UserWarning):
        cpu_meter = build_meter(fk.Cfg(), "cpu", nvml=nv, rapl_root=no_rapl, gpu_is_visible=True)
    with cpu_meter.window("w") as r2:
        pass
    assert set(r2.components) == {"cpu"}
    with pytest.raises(ConfigError, match="NVML is unusable"):
        build_meter(fk.Cfg(backend="nvml"), "cuda", nvml=nv, rapl_root=no_rapl)


def test_counter_read_error_mid_run_is_none_not_zero(fk):
    nv = fk.FakeNvml(_gpus(fk, 1))
    backend = NvmlBackend(nv, visible_devices=None)
    start = backend.begin()

    def broken(h):
        raise fk.FakeNVMLError("GPU is lost")

    nv.nvmlDeviceGetTotalEnergyConsumption = broken
    out = backend.end(start, 1.0, 1.0)
    assert out["gpu"].joules is None and "GPU is lost" in out["gpu"].params["reason"]
