"""benchmarks/federated_overhead.py runs: the bare FedAvg loop and Flower's messages in process each report
a round's seconds and the memory per client, measured (the simulation runtime is left to the benchmark)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bare_and_inprocess_rounds_are_measured():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "federated_overhead.py"), "--clients", "2",
                          "--rounds", "2", "--local-steps", "1", "--runtimes", "bare,inprocess", "--threads", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for runtime in ("bare", "inprocess"):
        line = re.search(rf"^\s*{runtime}: ([0-9.]+) s per round after the first .*; ([0-9.]+) MiB per client",
                         out.stdout, re.M)
        assert line and float(line.group(1)) > 0, out.stdout
