"""Sweeps: a grid of experiments (grid.py), one folder per job named by its configuration hash
(jobs.py), launchers that run them locally or in worker processes (runner.py, worker.py).

    outcome = run_sweep("configs/sweeps/digits.yaml", out="runs/digits-sweep", workers=2)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TextIO

from dagrad.atomic import write_text_atomic
from dagrad.launch.grid import GridPoint, Sweep, describe, read_sweep, resolve
from dagrad.launch.jobs import Job, expand, prepare
from dagrad.launch.runner import LAUNCHERS, JobResult, Launcher, LocalLauncher, ProcessLauncher, Progress, build_launcher

__all__ = ["GridPoint", "Sweep", "Job", "JobResult", "Launcher", "LocalLauncher", "ProcessLauncher", "Progress",
           "SweepOutcome", "LAUNCHERS", "build_launcher", "describe", "expand", "plan", "read_sweep", "resolve",
           "run_sweep"]


@dataclass
class SweepOutcome:
    out: Path
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)  # already done before this launch
    results: list[JobResult] = field(default_factory=list)

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status != "done"]


def plan(sweep_file: str | Path, out: Optional[str | Path] = None) -> tuple[Sweep, list[Job], Path]:
    """Read and validate the whole sweep (every job resolved) without writing anything."""
    sweep = read_sweep(sweep_file)
    out = Path(out) if out is not None else Path("runs") / f"sweep-{sweep.name}"
    return sweep, expand(sweep, out), out


def run_sweep(sweep_file: str | Path, out: Optional[str | Path] = None, workers: int = 1,
              launcher: Optional[Launcher] = None, stream: Optional[TextIO] | str = "stdout") -> SweepOutcome:
    """Run every job that is not done yet (resuming partial ones); returns what happened to each.
    Progress goes to `stream` (default: sys.stdout at call time; None: silent)."""
    stream = sys.stdout if stream == "stdout" else stream
    sweep, jobs, out = plan(sweep_file, out)
    out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        prepare(job)
    write_text_atomic(out / "jobs.json", json.dumps(
        [{"id": j.id, "job": j.name, "setting": j.point.setting} for j in jobs], indent=1) + "\n")
    todo = [j for j in jobs if j.state() != "done"]
    skipped = [j for j in jobs if j.state() == "done"]
    launcher = launcher or ProcessLauncher(workers)
    if stream is not None:
        print(f"sweep {sweep.name}: {len(jobs)} jobs in {out} ({len(skipped)} already done, "
              f"{sum(j.state() == 'partial' for j in todo)} to resume or restart); launcher {launcher.name}",
              file=stream, flush=True)
    progress = Progress(len(jobs), len(skipped), stream)
    results = launcher.launch(todo, progress)
    outcome = SweepOutcome(out, jobs, skipped, results)
    if stream is not None and outcome.failed:
        print(f"{len(outcome.failed)} job(s) did not finish:", file=stream)
        for r in outcome.failed:
            print(f"  {r.job.id} {r.job.name}: {r.status} (exit {r.returncode}); log {r.job.log}", file=stream)
    return outcome
