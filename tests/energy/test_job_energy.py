"""A job's energy as a GPU user needs it: only its own GPU, the first power sample guarded, RAPL
attributed on a shared node, gaps between windows metered, idle power and dynamic energy."""

from __future__ import annotations

import time

import pytest

from dagrad.energy import build_meter
from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.ledger import Gaps, dynamic_joules, measure_idle_power
from dagrad.energy.nvml import NvmlBackend
from dagrad.energy.rapl import ATTRIBUTED, SHARED_NODE_ENV, RaplBackend
from dagrad.energy.reading import ComponentEnergy, Reading, combine
from dagrad.utils.errors import ConfigError


def _three_gpus(fk):
    return fk.FakeNvml([fk.FakeGpu(uuid=f"GPU-{c * 8}-0000", name=f"Fake GPU {i}", energy_mj=1_000_000)
                        for i, c in enumerate("abc")])


@pytest.mark.parametrize("device, expected", [("cuda:1", 2.0), ("cuda", 1.0)])
def test_the_meter_reads_only_the_jobs_own_gpu(fk, tmp_path, monkeypatch, device, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nv = _three_gpus(fk)
    meter = build_meter(fk.Cfg(), device, nvml=nv, rapl_root=fk.no_rapl(tmp_path))
    with meter.window("train") as r:
        for g, add in zip(nv.gpus, (1_000, 2_000, 40_000)):  # every GPU of the node burns energy
            g.energy_mj += add
    meter.close()
    assert r.components["gpu"].joules == pytest.approx(expected)  # cuda:1 -> 2 J; 'cuda' = current (0) -> 1 J
    described = meter.describe()["backends"]["nvml"]["gpus"]
    assert len(described) == 1 and r.components["gpu"].params["devices"] == [int(device[-1]) if ":" in device else 0]


def test_the_own_gpu_follows_cuda_visible_devices(fk, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")  # a sweep worker handed NVML device 2
    nv = _three_gpus(fk)
    meter = build_meter(fk.Cfg(), "cuda:0", nvml=nv, rapl_root=fk.no_rapl(tmp_path))
    with meter.window("train") as r:
        for g, add in zip(nv.gpus, (1_000, 2_000, 40_000)):
            g.energy_mj += add
    meter.close()
    assert r.components["gpu"].joules == pytest.approx(40.0)


def test_a_cpu_job_meters_no_gpu_even_where_gpus_are_visible(fk, tmp_path):
    nv = _three_gpus(fk)
    meter = build_meter(fk.Cfg(), "cpu", nvml=nv, rapl_root=fk.no_rapl(tmp_path), gpu_is_visible=True)
    with meter.window("w") as r:
        nv.gpus[0].energy_mj += 5_000
    meter.close()
    assert set(r.components) == {"cpu"} and "trains on no GPU" in meter.describe()["not_selected"]["nvml"]
    with pytest.raises(ConfigError, match="trains on no GPU"):
        build_meter(fk.Cfg(backend="nvml"), "cpu", nvml=nv, rapl_root=fk.no_rapl(tmp_path), gpu_is_visible=True)


def test_first_power_sample_failure_is_backend_unavailable(fk):
    nv = fk.FakeNvml([fk.FakeGpu(uuid="GPU-a-0000", arch=4)])  # pre-Volta: power sampling

    def broken(handle):
        raise fk.FakeNVMLError("Unknown Error")

    nv.nvmlDeviceGetPowerUsage = broken
    with pytest.raises(BackendUnavailable, match="power read failed.*Unknown Error"):
        NvmlBackend(nv, device="cuda:0", visible_devices=None)
    assert nv.shutdowns == 1  # NVML released


def _stat(busy_ticks: int, idle_ticks: int = 10_000) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {busy_ticks} 0 0 {idle_ticks} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def test_rapl_on_a_shared_node_is_attributed_by_cpu_share(fk, tmp_path):
    root = fk.rapl_tree(tmp_path / "pc")
    stat = {"text": _stat(1_000)}

    def reader(path):
        return stat["text"] if path == "/proc/stat" else open(path).read()

    backend = RaplBackend(str(root), read_text=reader, poll_seconds=None, attribution="auto",
                          environ={SHARED_NODE_ENV: "4"})
    assert backend.attribution == "cpu_share" and backend.describe()["source"] == ATTRIBUTED
    start = backend.begin()
    fk.set_energy(root, "intel-rapl:0", 10_000_000 + 8_000_000)  # the package burnt 8 J
    fk.set_energy(root, "intel-rapl:0:2", 40_000_000 + 2_000_000)  # dram 2 J
    stat["text"] = _stat(1_000 + int(4 * backend._tick))  # the node was busy 4 CPU-seconds
    out = backend.end(start, 2.0, 1.0)  # ... of which this job used 1
    assert out["cpu"].joules == pytest.approx(2.0) and out["dram"].joules == pytest.approx(0.5)
    assert out["cpu"].source == ATTRIBUTED and out["cpu"].params["node_joules"] == pytest.approx(8.0)
    assert out["cpu"].params["cpu_share"] == pytest.approx(0.25)
    alone = RaplBackend(str(root), read_text=reader, poll_seconds=None, attribution="auto", environ={})
    assert alone.attribution == "node" and alone.describe()["source"] == "measured:rapl"


def test_gaps_fill_the_time_between_windows_and_sum_to_the_job(fk, tmp_path):
    meter = build_meter(fk.Cfg(backend="estimate"), "cpu")
    started = time.perf_counter()
    gaps = Gaps(meter)
    time.sleep(0.05)  # startup
    startup = gaps.take()
    with meter.window("train") as train:
        time.sleep(0.02)
    gaps.resume()
    time.sleep(0.03)  # a checkpoint
    gaps.pause()
    with meter.window("idle") as idle:
        time.sleep(0.01)
    gaps.resume()
    time.sleep(0.03)  # another part of the same gap
    between = gaps.take()
    elapsed = time.perf_counter() - started
    meter.close()
    assert startup.seconds >= 0.05 and between.seconds >= 0.06 and between.name == "other"
    job = combine("run", [startup, train, between])
    # all but the idle window; what is lost is the meter's own reading at each of the five switches (a few
    # ms each on a loaded machine), less than the shortest gap part (30 ms), so a missed part still fails
    assert elapsed - idle.seconds - 0.025 < job.seconds <= elapsed - idle.seconds
    assert job.components["cpu"].joules == pytest.approx(sum(r.components["cpu"].joules
                                                              for r in (startup, train, between)))


def test_a_sum_with_an_unreadable_part_is_unknown_not_partial():
    a = Reading("a", 1.0, 1.0, {"gpu": ComponentEnergy(5.0, "measured:nvml-energy")})
    b = Reading("b", 1.0, 1.0, {"gpu": ComponentEnergy(None, "unavailable:nvml", {"reason": "lost"})})
    total = combine("run", [a, b])
    assert total.seconds == 2.0 and total.components["gpu"].joules is None and total.joules is None


def test_idle_power_and_dynamic_energy(fk, tmp_path):
    nv = fk.FakeNvml([fk.FakeGpu(uuid="GPU-a-0000")])
    meter = build_meter(fk.Cfg(backend="nvml"), "cuda:0", nvml=nv, rapl_root=fk.no_rapl(tmp_path))

    def idle_sleep(seconds):
        time.sleep(0.05)
        nv.gpus[0].energy_mj += 60_000  # 60 J while idle

    idle = measure_idle_power(meter, 2.0, sleep=idle_sleep)
    meter.close()
    gpu = idle["components"]["gpu"]
    assert gpu["source"] == "measured:nvml-energy" and gpu["watts"] == pytest.approx(60.0 / idle["seconds"])
    reading = {"seconds": 10.0, "components": {"gpu": {"joules": 1000.0, "source": "measured:nvml-energy"}}}
    assert dynamic_joules(reading, idle) == pytest.approx(1000.0 - 10.0 * gpu["watts"])
    assert dynamic_joules(reading, None) is None
    other_source = {"seconds": 10.0, "components": {"gpu": {"joules": 1000.0, "source": "measured:nvml-power"}}}
    assert dynamic_joules(other_source, idle) is None  # never subtract a baseline measured another way
