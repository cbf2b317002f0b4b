"""RAPL backend against a fake /sys/class/powercap tree."""

from __future__ import annotations

import time

import pytest

from dagrad.energy import build_meter
from dagrad.energy.backend import BackendUnavailable
from dagrad.energy.rapl import RaplBackend
from dagrad.utils.errors import ConfigError


def _meter(fk, root, **kw):
    return build_meter(fk.Cfg(**kw), "cpu", rapl_root=str(root), gpu_is_visible=False)


def test_counters_advance_and_only_package_and_dram_are_summed(fk, tmp_path):
    root = fk.rapl_tree(tmp_path / "powercap")
    meter = _meter(fk, root)
    with meter.window("train") as r:
        fk.set_energy(root, "intel-rapl:0", 10_000_000 + 5_000_000)  # +5 J package
        fk.set_energy(root, "intel-rapl:0:2", 40_000_000 + 1_250_000)  # +1.25 J dram
        fk.set_energy(root, "intel-rapl:0:0", 20_000_000 + 4_000_000)  # core: inside package
        fk.set_energy(root, "intel-rapl:0:1", 30_000_000 + 700_000)  # uncore: inside package
        fk.set_energy(root, "intel-rapl:1", 50_000_000 + 9_000_000)  # psys: contains package
        fk.set_energy(root, "intel-rapl-mmio:0", 60_000_000 + 5_000_000)  # duplicate of package
    meter.close()
    assert set(r.components) == {"cpu", "dram"}
    assert r.components["cpu"].joules == 5.0
    assert r.components["dram"].joules == 1.25
    assert r.joules == 6.25
    assert r.sources == ["measured:rapl"]
    assert r.components["cpu"].params["zones"] == ["package-0"]
    ignored = " ".join(meter.describe()["backends"]["rapl"]["ignored"])
    for word in ("core", "uncore", "psys", "intel-rapl-mmio:0"):
        assert word in ignored


def test_dram_absent_gives_cpu_only_and_two_packages_are_summed(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "package-0", 100)
    fk.write_zone(root, "intel-rapl:1", "package-1", 200)
    meter = _meter(fk, root)
    with meter.window("w") as r:
        fk.set_energy(root, "intel-rapl:0", 100 + 2_000_000)
        fk.set_energy(root, "intel-rapl:1", 200 + 3_000_000)
    meter.close()
    assert set(r.components) == {"cpu"}
    assert r.components["cpu"].joules == 5.0
    assert r.components["cpu"].params["zones"] == ["package-0", "package-1"]


def test_wraparound_uses_max_energy_range(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "package-0", 999_000_000, max_uj=1_000_000_000)
    meter = _meter(fk, root)
    with meter.window("w") as r:
        fk.set_energy(root, "intel-rapl:0", 500_000)  # wrapped: 1_000_000 to the top + 500_000
    meter.close()
    assert r.components["cpu"].joules == 1.5


def test_intermediate_reads_fold_several_wraps_in_one_long_window(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "package-0", 900_000_000, max_uj=1_000_000_000)
    backend = RaplBackend(str(root), poll_seconds=None)
    start = backend.begin()
    fk.set_energy(root, "intel-rapl:0", 100_000_000)  # wrap 1: +200 J
    backend._sample()  # what the background poll does
    fk.set_energy(root, "intel-rapl:0", 600_000_000)  # +500 J
    backend._sample()
    fk.set_energy(root, "intel-rapl:0", 100_000_000)  # wrap 2: +500 J
    out = backend.end(start, 1.0, 1.0)
    assert out["cpu"].joules == 1200.0


def test_background_poll_thread_reads_and_stops(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "package-0", 0)
    reads = []

    def reader(path):
        reads.append(path)
        with open(path) as fh:
            return fh.read()

    backend = RaplBackend(str(root), read_text=reader, poll_seconds=0.01)
    time.sleep(0.15)
    backend.close()
    n = sum(p.endswith("energy_uj") for p in reads)
    assert n >= 3  # the initial read plus several polls
    time.sleep(0.05)
    assert sum(p.endswith("energy_uj") for p in reads) == n  # stopped


def test_permission_denied_falls_back_to_estimate_with_reason(fk, tmp_path):
    root = fk.rapl_tree(tmp_path / "pc")

    def reader(path):
        if path.endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        with open(path) as fh:
            return fh.read()

    with pytest.warns(UserWarning, match="ESTIMATED"):
        meter = build_meter(fk.Cfg(), "cpu", rapl_root=str(root), rapl_reader=reader, gpu_is_visible=False)
    d = meter.describe()
    assert d["selected"] == ["estimate"]
    assert "permission denied" in d["not_selected"]["rapl"]
    assert "intel-rapl:0/energy_uj" in d["not_selected"]["rapl"]
    with meter.window("w") as r:
        pass
    assert r.sources == ["estimated:cpu-time"]
    with pytest.raises(ConfigError, match="rapl"):
        build_meter(fk.Cfg(backend="rapl"), "cpu", rapl_root=str(root), rapl_reader=reader, gpu_is_visible=False)


def test_tree_without_package_zone_is_unavailable(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "psys", 1)
    with pytest.raises(BackendUnavailable, match="no RAPL package zone"):
        RaplBackend(str(root))
    with pytest.raises(BackendUnavailable, match="does not exist"):
        RaplBackend(str(tmp_path / "missing"))


def test_read_failure_inside_a_window_reports_none_not_zero(fk, tmp_path):
    root = tmp_path / "pc"
    fk.write_zone(root, "intel-rapl:0", "package-0", 5)
    meter = _meter(fk, root)
    with meter.window("w") as r:
        (root / "intel-rapl:0" / "energy_uj").unlink()
    meter.close()
    assert r.components["cpu"].joules is None
    assert r.components["cpu"].source == "unavailable:rapl"
    assert r.joules is None
