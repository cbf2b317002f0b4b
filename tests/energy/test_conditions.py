"""A window's conditions from fake /proc and /sys files: load, other processes' CPU share, frequency,
threads, and a GPU's other compute processes and utilisation through a fake NVML."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagrad.energy.backend import Backend
from dagrad.energy.conditions import (ConditionsPaths, ConditionsProbe, combine_conditions, other_cpu_share,
                                      read_cpu_mhz, read_cpu_ticks, read_loadavg, read_process_threads)
from dagrad.energy.cputime import CpuClock
from dagrad.energy.meter import Meter
from dagrad.energy.reading import Reading, combine
from dagrad.energy.select import build_meter

STAT = "cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n"


def fake_proc(root: Path, user: int, system: int, idle: int, load: str = "1.50 0.80 0.40 2/300 4242") -> ConditionsPaths:
    (root / "cpu0" / "cpufreq").mkdir(parents=True, exist_ok=True)
    (root / "cpu1" / "cpufreq").mkdir(parents=True, exist_ok=True)
    (root / "cpu0" / "cpufreq" / "scaling_cur_freq").write_text("2000000\n")
    (root / "cpu1" / "cpufreq" / "scaling_cur_freq").write_text("3000000\n")
    (root / "stat").write_text(STAT.format(user=user, system=system, idle=idle))
    (root / "loadavg").write_text(load + "\n")
    (root / "status").write_text("Name:\tpython\nThreads:\t7\nVmRSS:\t1 kB\n")
    (root / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 1200.000\nprocessor\t: 1\ncpu MHz\t\t: 1400.000\n")
    return ConditionsPaths(stat=str(root / "stat"), loadavg=str(root / "loadavg"), sysfs_cpu=str(root),
                           cpuinfo=str(root / "cpuinfo"), status=str(root / "status"))


def test_the_readers_parse_fake_files(tmp_path):
    paths = fake_proc(tmp_path, user=1000, system=500, idle=8500)
    assert read_cpu_ticks(paths.stat) == (1500, 10000)
    assert read_loadavg(paths.loadavg) == 1.5
    assert read_cpu_mhz(None, paths.sysfs_cpu, paths.cpuinfo) == 2500.0
    assert read_cpu_mhz([1], paths.sysfs_cpu, paths.cpuinfo) == 3000.0
    assert read_cpu_mhz(None, str(tmp_path / "no-sysfs"), paths.cpuinfo) == 1300.0  # /proc/cpuinfo instead
    assert read_process_threads(paths.status) == 7


def test_unreadable_files_are_none_never_zero(tmp_path):
    missing = str(tmp_path / "absent")
    assert read_cpu_ticks(missing) is None and read_loadavg(missing) is None
    assert read_cpu_mhz(None, missing, missing) is None and read_process_threads(missing) is None
    (tmp_path / "stat").write_text("cpu  a b c\n")
    assert read_cpu_ticks(str(tmp_path / "stat")) is None


def test_other_processes_share_is_machine_time_less_the_jobs_own(tmp_path):
    paths = fake_proc(tmp_path, user=1000, system=500, idle=8500)
    probe = ConditionsProbe(paths, torch_threads=lambda: 2, tick_hz=100.0)
    start = probe.begin()
    # 4 s of wall time on 2 CPUs = 800 ticks of capacity; 600 busy ticks (6 CPU-s), of which the job used 2.5
    fake_proc(tmp_path, user=1450, system=650, idle=8700, load="3.25 1.00 0.50 5/310 4243")
    got = probe.end(start, own_cpu_seconds=2.5)
    assert got["machine_cpu_s"] == 6.0 and got["capacity_cpu_s"] == 8.0
    assert got["other_cpu_share"] == pytest.approx((6.0 - 2.5) / 8.0)
    assert got["load_avg_1m"] == 3.25 and got["cpu_mhz"] == 2500.0
    assert got["torch_threads"] == 2 and got["process_threads"] == 7 and "gpu" not in got


def test_the_share_is_clamped_and_unknown_for_an_empty_window():
    assert other_cpu_share(100, 800, own_cpu_seconds=1.2, tick_hz=100.0) == 0.0  # clocks of different resolution
    assert other_cpu_share(900, 800, own_cpu_seconds=0.0, tick_hz=100.0) == 1.0
    assert other_cpu_share(0, 0, own_cpu_seconds=0.0, tick_hz=100.0) is None


def test_gpu_neighbours_count_other_pids_and_read_utilisation(tmp_path, fk):
    nvml = fk.FakeNvml([fk.FakeGpu("GPU-a", compute_pids=(os.getpid(), 111, 222), utilisation=87)])
    probe = ConditionsProbe(fake_proc(tmp_path, 1, 1, 1), torch_threads=lambda: 1, gpu=(nvml, 0), tick_hz=100.0)
    assert probe.end(probe.begin(), 0.0)["gpu"] == {"other_processes": 2, "utilisation_pct": 87.0}
    broken = ConditionsProbe(fake_proc(tmp_path, 1, 1, 1), gpu=(object(), 0), tick_hz=100.0)
    assert broken.end(None, 0.0)["gpu"] == {"other_processes": None, "utilisation_pct": None}


def test_a_cuda_meter_reads_its_gpus_neighbours(fk):
    nvml = fk.FakeNvml([fk.FakeGpu("GPU-a", compute_pids=(999_999,), utilisation=40)])
    meter = build_meter(fk.Cfg(backend="nvml"), "cuda:0", nvml=nvml, gpu_is_visible=True)
    with meter.window("train") as r:
        pass
    assert r.conditions["gpu"] == {"other_processes": 1, "utilisation_pct": 40.0}
    meter.close()


class _Nothing(Backend):
    name = "nothing"

    def begin(self):
        return None

    def end(self, start, seconds, cpu_seconds):
        return {}


def test_every_window_carries_its_conditions_through_records(tmp_path):
    paths = fake_proc(tmp_path, user=0, system=0, idle=0)
    meter = Meter([_Nothing()], CpuClock(), conditions=ConditionsProbe(paths, lambda: 3, tick_hz=100.0))
    with meter.window("train") as r:
        fake_proc(tmp_path, user=300, system=100, idle=400)
    stored = r.to_dict()["conditions"]
    assert stored["capacity_cpu_s"] == 8.0 and stored["torch_threads"] == 3
    assert Reading.from_dict(r.to_dict()).conditions == stored
    assert "conditions" not in Reading("plain").to_dict()  # a window without a probe records none


def test_consecutive_windows_combine_their_cpu_times():
    a = Reading("other", 1.0, 1.0, conditions={"machine_cpu_s": 2.0, "capacity_cpu_s": 2.0, "load_avg_1m": 1.0,
                                               "cpu_mhz": None, "torch_threads": 1, "process_threads": 3})
    b = Reading("other", 1.0, 0.5, conditions={"machine_cpu_s": 1.5, "capacity_cpu_s": 2.0, "load_avg_1m": 2.5,
                                               "cpu_mhz": 2000.0, "torch_threads": 1, "process_threads": 4})
    got = combine("other", [a, b]).conditions
    assert got["other_cpu_share"] == pytest.approx((3.5 - 1.5) / 4.0) and got["windows"] == 2
    assert got["load_avg_1m"] == 2.5 and got["cpu_mhz"] == 2000.0 and got["process_threads"] == 4
    assert combine_conditions([None, b.conditions], 0.5)["other_cpu_share"] is None  # one window unknown
    assert combine_conditions([None, None], 0.0) is None


def test_ranks_count_every_ranks_cpu_time_as_the_jobs_own():
    from dagrad.energy.ranks import combine_ranks

    cond = {"machine_cpu_s": 6.0, "capacity_cpu_s": 8.0, "other_cpu_share": 0.5, "load_avg_1m": 2.0}
    got = combine_ranks([Reading("train", 4.0, 2.0, conditions=cond), Reading("train", 4.0, 3.0, conditions=cond)])
    assert got.conditions["ranks"] == 2 and got.conditions["other_cpu_share"] == pytest.approx((6.0 - 5.0) / 8.0)
    assert combine_ranks([Reading("eval", 1.0, 1.0), Reading("eval", 1.0, 1.0)]).conditions is None
