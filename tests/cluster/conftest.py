"""The real single-node Slurm the `slurm` tests run against: started by tests/cluster/slurm.sh (CI does it
before `make test-slurm`); without it these tests skip and say how to start it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.slurmcluster import STATE, slurm

SCRIPT = Path(__file__).with_name("slurm.sh")


@pytest.fixture(scope="session")
def slurm_conf() -> Path:
    conf = STATE / "slurm.conf"
    running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True,
                             env=dict(os.environ, DAGRAD_SLURM_DIR=str(STATE)))
    if not conf.is_file() or running.returncode != 0:
        pytest.skip("no local Slurm cluster running (start it with: tests/cluster/slurm.sh start)")
    return conf


@pytest.fixture
def cluster(slurm_conf, monkeypatch, tmp_path):
    """Slurm's commands talk to the local cluster; a job's processes get the same environment (sbatch
    exports it), and the jobs' working folder is the test's."""
    pytest.importorskip("submitit")
    monkeypatch.setenv("SLURM_CONF", str(slurm_conf))
    monkeypatch.setenv("DAGRAD_DIST_TIMEOUT_S", "120")
    monkeypatch.chdir(tmp_path)
    yield slurm_conf
    mine = [line.split("|") for line in slurm("squeue", "--noheader", "--format=%i|%Z").splitlines() if "|" in line]
    ids = [job for job, workdir in mine if str(tmp_path) in workdir]
    if ids:  # nothing a test submitted outlives it
        subprocess.run(["scancel", *{i.split("_")[0] for i in ids}], check=False)


