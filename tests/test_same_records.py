"""benchmarks/same_records.py: equal records but for energy and timing pass; any other difference fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "same_records.py"


def _write(folder: Path, acc: float, joules: float, seconds: float) -> None:
    folder.mkdir(parents=True)
    lines = [{"type": "header", "run_id": "abc", "config": {"epochs": 1}, "versions": {"torch": str(seconds)}},
             {"type": "epoch", "epoch": 0, "kind": "sampled", "metrics": {"env0_in_acc": acc}, "seconds": seconds,
              "energy": {"train": {"total_J": joules}}},
             {"type": "summary", "updates": 3, "run_energy": {"total_J": joules}}]
    (folder / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def _compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True)


def test_energy_and_timing_aside_the_records_must_match(tmp_path):
    _write(tmp_path / "before" / "run", 0.5, 10.0, 1.0)
    _write(tmp_path / "after" / "run", 0.5, 12.5, 2.0)
    _write(tmp_path / "changed" / "run", 0.25, 10.0, 1.0)
    same = _compare(tmp_path / "before", tmp_path / "after")
    assert same.returncode == 0 and "run/records.jsonl: same" in same.stdout
    changed = _compare(tmp_path / "before", tmp_path / "changed")
    assert changed.returncode == 1 and "[1].metrics.env0_in_acc: 0.5 != 0.25" in changed.stdout
    assert _compare(tmp_path / "before", tmp_path / "missing").returncode == 2
