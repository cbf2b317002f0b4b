"""Helpers for the tests against the real single-node Slurm (tests/cluster/): Slurm's commands, a sweep file
for the cluster, waiting, and records compared without times and energy."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml

STATE = Path(os.environ.get("DAGRAD_SLURM_DIR", "/tmp/dagrad-slurm"))
BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 3}
#: every task on the one-node cluster: one CPU, no GPU
LAUNCHER = {"name": "slurm", "gpus_per_node": 0, "cpus_per_task": 1, "timeout_min": 20, "poll_s": 1.0}


def slurm(*command: str) -> str:
    """A Slurm command's output (it must succeed)."""
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def sacct(job_id: str) -> dict[str, str]:
    """job id (array tasks as <array>_<index>) -> state, from accounting."""
    out = slurm("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State")
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if "|" in line}


def write_sweep(path: Path, grid: dict, launcher: Optional[dict] = None, epochs: int = 2, **base) -> Path:
    data = {"name": "c", "base": [{**BASE, "epochs": epochs, **base}], "grid": grid,
            "launcher": {**LAUNCHER, **(launcher or {})}}
    path.write_text(yaml.safe_dump(data))
    return path


def wait_until(what: str, check: Callable[[], object], seconds: float = 240.0, every: float = 0.5):
    """check()'s first true value; fails the test after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"waited {seconds:.0f} s for {what}")


def release_requeued(job_id: str) -> bool:
    """Slurm holds a requeued job back for two minutes (BeginTime); let it start now. True once it runs
    again or has ended."""
    line = subprocess.run(["squeue", "--noheader", "--array", "-j", job_id.split("_")[0], "--format=%i|%T|%r"],
                          capture_output=True, text=True, timeout=60).stdout.split("\n")  # ended and forgotten: ""
    states = {p[0]: p[1:] for p in (x.split("|") for x in line if "|" in x)}
    state = states.get(job_id)
    if state is None or state[0] == "RUNNING":
        return True
    if state[0] == "PENDING" and state[1] == "BeginTime":
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=False,
                       capture_output=True)
    return False


def computed(lines: list[dict]) -> list[dict]:
    """What a run computed, without energy and times (they differ between two runs of the same thing)."""
    keep = ("type", "epoch", "step", "updates", "kind", "fallback", "metrics", "averaged_metrics", "update_stats",
            "sampler_stats", "averager", "run_id", "stopped_early", "reported")
    return [{k: line[k] for k in keep if k in line} for line in lines]
