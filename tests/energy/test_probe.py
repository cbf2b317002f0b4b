"""The probe report names the active backend, the reasons for the others, and calibrates."""

from __future__ import annotations

import re

import pytest

from dagrad.config.schema import EnergyConfig
from dagrad.energy.probe import probe


def test_probe_reports_backend_reasons_and_both_windows(fk, recwarn):
    text = probe(EnergyConfig(backend="estimate", backends={"estimate": {"watts_per_thread": 4.0}}), "cpu",
                 seconds=0.1)
    assert "active: estimate" in text and "[ESTIMATED]" in text
    assert "not nvml:" in text and "not rapl:" in text
    idle = re.search(r"idle\s+([\d.]+) s wall\s+([\d.]+) s CPU\s+([\d.]+) J", text)
    busy = re.search(r"busy\s+([\d.]+) s wall\s+([\d.]+) s CPU\s+([\d.]+) J", text)
    assert idle and busy, text
    assert float(idle.group(1)) >= 0.1 and float(busy.group(1)) >= 0.1
    assert float(busy.group(2)) > float(idle.group(2))  # the matmul loop burns CPU, sleep does not
    assert text.count("estimated:cpu-time") >= 2


def test_probe_rejects_non_positive_seconds(fk):
    with pytest.raises(ValueError, match="seconds"):
        probe(fk.Cfg(), "cpu", seconds=0)
