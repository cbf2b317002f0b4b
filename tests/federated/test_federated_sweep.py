"""sweeps/federated_digits: 300 distinct federated jobs (lambda x GradSamp side and control x 5 seeds, for
ERM under FedAvg, FedProx and FedDG-GA and FedSR under FedAvg), checked without running any; the jobs the
sweep had before FedDG-GA and FedSR joined keep their identities."""

from __future__ import annotations

import re
from collections import Counter

from dagrad.cli import main

#: jobs of the sweep before fedga and fedsr joined it (first and last of its 150), by identity
EARLIER = {"4c831153484f": "erm/none trial_seed=0 lambda=l0 strategy=fedavg side=client",
           "1360ec6bf54a": "erm/skip trial_seed=4 lambda=l1 strategy=fedprox side=server"}


def test_federated_digits_sweep_dry_run(tmp_path, capsys):
    assert main(["sweep", "-c", "sweeps/federated_digits", "--out", str(tmp_path / "sweep"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("sweep federated_digits: 300 jobs")
    jobs = re.findall(r"^\s+([0-9a-f]{12})\s+new\s+rotated_digits/(\w+)/(\w+) .*trial_seed=(\d) lambda=(\S+) "
                      r"strategy=(\w+) side=(\w+)$", out, re.M)
    assert len(jobs) == 300 and len({j[0] for j in jobs}) == 300
    cells = Counter((sampler, side) for _, _, sampler, _, _, _, side in jobs)
    assert cells == {("none", "client"): 60, ("tensor", "client"): 60, ("skip", "client"): 60,
                     ("tensor", "server"): 60, ("skip", "server"): 60}
    assert Counter(j[4] for j in jobs) == {"l0": 100, "l0.5": 100, "l1": 100}
    assert Counter((j[1], j[5]) for j in jobs) == {("erm", "fedavg"): 75, ("erm", "fedprox"): 75,
                                                   ("erm", "fedga"): 75, ("fedsr", "fedavg"): 75}
    assert set(j[3] for j in jobs) == {"0", "1", "2", "3", "4"}
    labels = {j[0]: f"{j[1]}/{j[2]} trial_seed={j[3]} lambda={j[4]} strategy={j[5]} side={j[6]}" for j in jobs}
    assert all(labels.get(job) == label for job, label in EARLIER.items())
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").rglob("records.jsonl"))
