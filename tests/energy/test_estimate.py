"""CPU-time estimate and the process+children CPU clock, on real work."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dagrad.energy import build_meter
from dagrad.energy.estimate import EstimateBackend
from dagrad.utils.errors import ConfigError

BUSY = 0.3
_CHILD_BUSY = (
    "import sys, time\n"
    "t = time.process_time()\n"
    f"while time.process_time() - t < {BUSY}: pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"  # stay alive until the parent closes stdin
)


def _spin(seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


@pytest.fixture
def meter(fk, tmp_path, recwarn):
    m = build_meter(fk.Cfg(backend="estimate", watts_per_thread=4.0), "cpu", rapl_root=fk.no_rapl(tmp_path))
    yield m
    m.close()


def test_busy_loop_joules_are_cpu_seconds_times_watts(meter):
    with meter.window("busy") as r:
        _spin(BUSY)
    assert BUSY <= r.cpu_seconds <= BUSY + 0.1
    assert r.components["cpu"].joules == r.cpu_seconds * 4.0
    assert r.components["cpu"].params == {"watts_per_thread": 4.0, "formula": "cpu_seconds * watts_per_thread"}
    assert r.seconds >= BUSY * 0.9


def test_reaped_subprocess_cpu_is_counted(meter):
    with meter.window("child") as r:
        subprocess.run([sys.executable, "-c", _CHILD_BUSY], input="", text=True, check=True,
                       capture_output=True)
    assert r.cpu_seconds >= BUSY  # the child's busy loop (plus its interpreter start-up)
    assert r.components["cpu"].joules == r.cpu_seconds * 4.0


def test_live_child_cpu_is_counted_before_it_exits(meter):
    """A persistent worker (e.g. a DataLoader worker that outlives the window) still counts."""
    if not meter.cpu_clock.live_children:
        pytest.skip("/proc/<pid>/task/*/children not available on this kernel")
    child = subprocess.Popen([sys.executable, "-c", _CHILD_BUSY], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        with meter.window("live") as r:
            assert child.stdout.readline().strip() == "done"
        assert child.poll() is None  # still alive at window end
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert r.cpu_seconds >= BUSY - 0.02  # /proc has 1/CLK_TCK (10 ms) resolution


def test_tdp_formula_and_its_params():
    backend = EstimateBackend(watts_per_thread=4.0, cpu_tdp_w=65.0, threads=8)
    out = backend.end(None, 2.0, 3.0)["cpu"]
    assert out.joules == 3.0 * (65.0 / 8)
    assert out.params == {"cpu_tdp_w": 65.0, "threads": 8, "watts_per_thread": 65.0 / 8,
                          "formula": "cpu_seconds * cpu_tdp_w / threads"}
    default_threads = EstimateBackend(cpu_tdp_w=64.0).params["threads"]
    assert default_threads == os.cpu_count()


@pytest.mark.parametrize("kw", [{"watts_per_thread": 0.0}, {"watts_per_thread": -1.0}, {"cpu_tdp_w": 0.0}])
def test_bad_wattage_is_a_config_error(fk, tmp_path, kw):
    with pytest.raises(ConfigError, match=f"energy.backends.estimate.{next(iter(kw))}: .* is out of range; allowed: "
                                          f"a finite number > 0"):
        build_meter(fk.Cfg(backend="estimate", **kw), "cpu", rapl_root=fk.no_rapl(tmp_path))
