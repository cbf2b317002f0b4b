"""`dagrad sweep -c SWEEP.yaml [key=value ...] [--out DIR] [--workers N] [--launcher NAME] [--order ORDER]
[--dry-run]`: run a grid of experiments.

`key=value` overrides change the sweep as the same key in its file would: `grid.trial_seeds=[0,1]` an axis,
`launcher.partition=gpu` the launcher block, any other key (`epochs=3`) every job (see launch/grid.py).

Every job is validated before any runs (names, options, hyperparameter ranges, the dataset's
environments, plugin consent); a relaunch skips finished jobs and resumes the others. Exit code 0 when
no job failed (jobs another launch is running, and jobs queued on a cluster, are named, not counted as
failures), 1 when any failed (their logs are listed), 2 for a bad sweep. `--launcher slurm` submits the
jobs as a Slurm job array and returns; `dagrad status OUT` follows them."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.utils.errors import ConfigError
from dagrad.plugins import add_consent_arguments, consent_from


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", description="Run a grid of experiments; a relaunch skips finished jobs and "
                       "resumes the others.", **common)
    p.add_argument("-c", "--config", required=True, help="sweep YAML (a path or a shipped name, e.g. sweeps/digits)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="applied to the sweep: grid.<axis>=..., launcher.<option>=..., or an experiment key for "
                        "every job (e.g. epochs=3)")
    p.add_argument("--out", type=Path, help="sweep folder (default runs/sweep-<name>)")
    p.add_argument("--workers", type=int, default=1, help="jobs at once for the local launchers (default 1)")
    p.add_argument("--launcher", help="local, processes, slurm or a plugin's (`dagrad list launchers`); default: "
                   "the sweep's launcher: block, else processes")
    p.add_argument("--order", default="side-by-side", help="job order: side-by-side (default: the settings "
                   "compared for one dataset, test environment, hparams seed and trial seed run next to each other, "
                   "at the same time with several workers) or grouped (setting after setting)")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and their state, run nothing")
    add_consent_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.api.sweeps import launch_sweep
    from dagrad.launch.grid import check_order

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    check_order(args.order)
    consent = consent_from(args)  # --plugin X is imported by the launcher and every worker
    if args.dry_run:
        return _dry_run(args, consent)
    outcome = launch_sweep(args.config, out=args.out, launcher=args.launcher, workers=args.workers,
                           threads=getattr(args, "threads", None), plugins=consent, order=args.order,
                           overrides=args.overrides, note=lambda text: print(f"dagrad: note: {text}"))
    try:
        print(f"records: {outcome.out}/<job>/records.jsonl; tables: dagrad report {outcome.out}")
    except BrokenPipeError:
        pass
    return 1 if outcome.failed else 0


def _dry_run(args: argparse.Namespace, consent) -> int:
    """List the jobs and check what would make them all fail (launcher, device, data); import nothing."""
    from dagrad.api.sweeps import dry_run
    from dagrad.launch.grid import describe

    plan = dry_run(args.config, out=args.out, launcher=args.launcher, plugins=consent, order=args.order,
                   overrides=args.overrides)
    print(f"sweep {plan.spec.name}: {len(plan.jobs) + len(plan.unchecked)} jobs -> {plan.out}")
    for job in plan.jobs:
        print(f"  {job.id}  {job.state():7s}  {job.name}")
    for point in plan.unchecked:
        print(f"  {'?' * 12}  unchecked  {describe(point)}")
    if plan.unchecked or not plan.launcher_known:
        print(f"dagrad: note: a dry run imports no plugin, so {len(plan.unchecked)} job(s) naming a component no "
              f"registry holds yet{'' if plan.launcher_known else f' and the launcher {plan.launcher!r}'} are "
              "listed unchecked")
    plan.check()
    return 0
