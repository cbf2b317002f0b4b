"""`dagrad status FOLDER [--watch [SECONDS]] [--all] [--offline]`: where a sweep or a run stands, read from
its folders alone (see dagrad.launch.status): jobs done, running (epoch, host, PID or Slurm id), queued,
failed (with their log's last line and, on Slurm, the cluster's final state), stopped, cancelled and not
started, and the energy metered so far.

`--watch` prints it again every SECONDS (default 30) until the sweep's launcher has ended and nothing is
running, starting or queued (a live launcher marks the sweep, see dagrad.launch.launcher_mark); on a terminal
the screen is redrawn, in a log file each view follows the last under a time stamp."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

WATCH_MAX = 86400  # a day between refreshes; more would overflow the sleep (and nan never compares)
LISTED = ("running", "starting", "queued", "failed", "stopped", "cancelled")  # listed job by job; the others are counted (--all: all)


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("status", description="Where a sweep (or one run) stands: jobs done, running, queued, "
                       "failed and not started, and the energy spent so far, read from its folder.", **common)
    p.add_argument("folder", type=Path, help="a sweep's --out folder (with jobs.json) or a run folder")
    p.add_argument("--watch", nargs="?", type=float, const=30.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 30) until nothing runs or waits")
    p.add_argument("--all", action="store_true", help="list every job, the done and not started ones too")
    p.add_argument("--offline", action="store_true", help="do not ask the cluster (sacct/squeue) which "
                   "submitted jobs are still queued")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.utils.errors import ConfigError
    from dagrad.launch.status import read_status

    if args.watch is not None and not 0 < args.watch <= WATCH_MAX:
        raise ConfigError(f"--watch: seconds between refreshes must be in (0, {WATCH_MAX}], got {args.watch:g}")
    terminal = sys.stdout.isatty()
    while True:
        status = read_status(args.folder, ask_cluster=not args.offline)
        text = render(status, args.all)
        if args.watch is None:
            print(text)
            return 0
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(("\033[H\033[J" if terminal else "") + f"=== {stamp}  (every {args.watch:g} s; Ctrl-C stops)\n{text}",
              flush=True)
        if not status.active:
            return 0
        time.sleep(args.watch)


def render(status, listing_all: bool = False) -> str:
    """The status as plain lines (no colour, no bars: it reads the same in a terminal and a log file)."""
    from dagrad.launch.status import STATES

    if not status.is_sweep:
        [job] = status.jobs
        return f"run {status.folder}: {job.state}, {_detail(job)}".rstrip(", ")
    counts = ", ".join(f"{state} {status.count(state)}" for state in STATES if status.count(state) or state == "done")
    from dagrad.launch.eta import format_eta

    eta = format_eta(status.eta())
    launching = "".join(f" | launcher PID {h.pid} on {h.host}" for h in status.launchers[:2])
    lines = [f"sweep {status.folder}: {len(status.jobs)} jobs | {counts}{launching}" + (f" | {eta}" if eta else ""),
             _energy_line(status)]
    width = max((len(j.id) for j in status.jobs), default=0)
    for state in STATES:
        jobs = status.by_state(state)
        if not jobs or (state not in LISTED and not listing_all):
            continue
        lines.append(f"{state}:")
        for job in jobs:
            lines.append(f"  {job.id:{width}s}  {job.name}  {_detail(job)}".rstrip())
    return "\n".join(lines)


def _energy_line(status) -> str:
    metered = [j for j in status.jobs if j.joules is not None]
    if not metered:
        return "run energy so far: none metered yet"
    sources = sorted({s for j in metered for s in j.energy_sources})
    unknown = sum(j.energy_unknown for j in status.jobs)
    gaps = f"; {unknown} job(s) with a component that could not be read (not counted)" if unknown else ""
    return (f"run energy so far (whole jobs): {_joules(status.joules)} over {len(metered)} job(s) "
            f"({', '.join(sources) or 'no source'}){gaps}")


def _detail(job) -> str:
    epochs = f"{job.epoch} of {job.epochs} epochs done" if job.epochs else f"{job.epoch} epochs done"
    energy = f", run {_joules(job.joules)}" if job.joules is not None else ""
    if job.state == "running":
        beat = f", heartbeat {_ago(job.heartbeat_age)}" if job.heartbeat_age is not None else ""
        since = f", last epoch {_ago(time.time() - job.last_update)}" if job.last_update and job.epoch else ""
        return f"{epochs} on {job.where()}{since}{beat}{energy}"
    if job.state == "queued":
        return job.where()
    if job.state == "starting":
        return f"{epochs}, a worker of the launcher on {job.where()} is starting it"
    if job.state in ("failed", "stopped", "cancelled"):
        cluster = f"; Slurm {job.cluster_state}" if job.cluster_state else ""
        return f"{epochs}{energy}{cluster}; log: {job.last_log_line or '(empty)'}"
    if job.state == "done":
        return f"{epochs}{energy}"
    return f"{epochs}" if job.epoch else ""


def _joules(joules: float) -> str:
    for unit, size in (("MJ", 1e6), ("kJ", 1e3)):
        if abs(joules) >= size:
            return f"{joules / size:.2f} {unit}"
    return f"{joules:.1f} J"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
