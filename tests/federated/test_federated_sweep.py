"""sweeps/federated_digits: 150 distinct federated jobs (lambda x strategy x GradSamp side and control x 5
seeds), checked without running any."""

from __future__ import annotations

import re
from collections import Counter

from dagrad.cli import main


def test_federated_digits_sweep_dry_run(tmp_path, capsys):
    assert main(["sweep", "-c", "sweeps/federated_digits", "--out", str(tmp_path / "sweep"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("sweep federated_digits: 150 jobs")
    jobs = re.findall(r"^\s+([0-9a-f]{12})\s+new\s+rotated_digits/erm/(\w+) .*trial_seed=(\d) lambda=(\S+) "
                      r"strategy=(\w+) side=(\w+)$", out, re.M)
    assert len(jobs) == 150 and len({j[0] for j in jobs}) == 150
    cells = Counter((sampler, side) for _, sampler, _, _, _, side in jobs)
    assert cells == {("none", "client"): 30, ("tensor", "client"): 30, ("skip", "client"): 30,
                     ("tensor", "server"): 30, ("skip", "server"): 30}
    assert Counter(j[3] for j in jobs) == {"l0": 50, "l0.5": 50, "l1": 50}
    assert Counter(j[4] for j in jobs) == {"fedavg": 75, "fedprox": 75}
    assert set(j[2] for j in jobs) == {"0", "1", "2", "3", "4"}
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").rglob("records.jsonl"))
