"""A local-cluster sweep that returns without waiting leaves its task controllers running by design, and
says nothing about them as leaked subprocesses."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip("submitit")

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 3, "epochs": 2}


@pytest.mark.slow
def test_no_still_running_warnings_after_a_local_cluster_launch(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "q", "base": [BASE], "grid": {"trial_seeds": 2}, "launcher": {
        "name": "slurm", "cluster": "local", "gpus_per_node": 0}}))
    out = tmp_path / "out"
    ran = subprocess.run([sys.executable, "-m", "dagrad", "--threads", "1", "sweep", "-c", str(sweep), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "still running" not in ran.stderr and "warning" not in ran.stderr, ran.stderr
    assert "2 job(s) queued or running on the cluster" in ran.stdout
    deadline = time.time() + 300  # the controllers finish the jobs after the launch has returned
    while not all((out / j / "done").is_file() for j in [p.name for p in out.iterdir() if (p / "config.json").is_file()]):
        assert time.time() < deadline, "the local tasks did not finish"
        time.sleep(1)
