"""`dagrad sweep -c SWEEP.yaml [--out DIR] [--workers N] [--dry-run]`: run a grid of experiments.

Every job is validated before any runs; a relaunch skips finished jobs and resumes the others.
Exit code 0 when every job finished, 1 when any failed (their logs are listed), 2 for a bad sweep."""

from __future__ import annotations

import argparse

from dagrad.errors import ConfigError
from dagrad.launch import ProcessLauncher, plan, run_sweep


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.dry_run:
        sweep, jobs, out = plan(args.config, args.out)
        print(f"sweep {sweep.name}: {len(jobs)} jobs -> {out}")
        for job in jobs:
            print(f"  {job.id}  {job.state():7s}  {job.name}")
        return 0
    outcome = run_sweep(args.config, args.out, launcher=ProcessLauncher(args.workers))
    print(f"records: {outcome.out}/<job>/records.jsonl; tables: dagrad report {outcome.out}")
    return 1 if outcome.failed else 0
