"""Where a sweep (or one run) stands, read from its folders alone: no sweep YAML, no launcher.

Per job: `done` (its done marker), `running` (its lock is held by a live process: host, PID, Slurm id,
the epoch its records have reached), `queued` (submitted to a cluster, whose task has not started it
yet), `failed` (its last attempt ended in an error: the log's last line says which), `stopped` (an attempt
was cut off without an error, e.g. killed or preempted without requeue: a relaunch resumes it),
`cancelled` (its Slurm job was cancelled, scancel: a relaunch resumes it) and `not started`. A failed or
stopped Slurm job carries the cluster's final state (FAILED, TIMEOUT, NODE_FAIL, ...) beside its log's
last line. Energy so far is the sum of each job's metered windows (dagrad.energy.ledger.job_energy).

Whether a submitted job is still queued is asked of the cluster (one sacct call for the whole sweep, see
slurm_state.py) unless `ask_cluster` is false; a job whose submission the cluster no longer knows and
that never started is reported `stopped`."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from dagrad.utils.errors import ConfigError, RecordsError
from dagrad.run.lock import Holder, holder_of
from dagrad.launch.eta import eta_seconds
from dagrad.launch.slurm_state import QUEUED_STATES, Submission, alive_submissions, read_submission, slurm_states
from dagrad.records.files import RECORDS_NAME, read_records
from dagrad.run.folder import LOCK_NAME

STATES = ("done", "running", "starting", "queued", "failed", "stopped", "cancelled", "not started")
#: what the cluster says of a job that ended without finishing: `cancelled` (scancel) in dagrad's words
CANCELLED_STATES = frozenset({"CANCELLED"})
#: what a log line of a failed attempt starts with (the worker's one-line error, or a traceback's last line)
_FAILURE_MARKS = ("dagrad: error:", "Traceback (most recent call last)")
_ATTEMPT = re.compile(r"^--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d job ")  # the worker's first line of an attempt


@dataclass
class JobStatus:
    id: str
    name: str
    folder: Path
    state: str = "not started"
    epoch: int = 0  # epochs recorded so far
    epochs: Optional[int] = None  # epochs configured
    holder: Optional[Holder] = None  # running: who holds the lock
    heartbeat_age: Optional[float] = None  # seconds since the lock's last heartbeat
    submission: Optional[Submission] = None
    cluster_state: Optional[str] = None
    joules: Optional[float] = None  # energy metered so far (None: none yet, or a component unreadable)
    energy_sources: list[str] = field(default_factory=list)
    energy_unknown: bool = False
    last_log_line: str = ""
    last_update: Optional[float] = None  # when the records were last written
    setting: str = ""  # the job's GradSamp setting (jobs.json), which its duration depends on
    seconds: Optional[float] = None  # done: how long its (last) run took

    def where(self) -> str:
        """Where it runs (running) or waits (queued), in words."""
        if self.holder is not None:
            slurm = f", Slurm {self.holder.slurm_job_id}" if self.holder.slurm_job_id else ""
            return f"{self.holder.host} (PID {self.holder.pid}{slurm})"
        if self.submission is not None:
            state = f" {self.cluster_state.lower()}" if self.cluster_state else ""
            return f"{self.submission.describe()}{state}"
        return ""


@dataclass
class SweepStatus:
    folder: Path
    jobs: list[JobStatus]
    is_sweep: bool = True
    read_at: float = field(default_factory=time.time)
    launchers: list[Holder] = field(default_factory=list)  # live launches of this sweep (their marks)

    def count(self, state: str) -> int:
        return sum(j.state == state for j in self.jobs)

    def by_state(self, state: str) -> list[JobStatus]:
        return [j for j in self.jobs if j.state == state]

    @property
    def joules(self) -> float:
        return sum(j.joules for j in self.jobs if j.joules is not None)

    @property
    def active(self) -> bool:
        """Whether anything may still change: a job running, starting or queued, or a launcher still live
        (between two jobs no job holds a lock, yet the sweep goes on)."""
        return bool(self.launchers) or any(j.state in ("running", "starting", "queued") for j in self.jobs)

    def eta(self) -> Optional[float]:
        """Seconds until the running and waiting jobs end, from the done jobs' durations per setting (eta.py);
        None while nothing runs or waits, or before a job is done."""
        if not self.active:
            return None
        finished = [(j.setting, j.seconds) for j in self.jobs if j.state == "done" and j.seconds is not None]
        left = [j.setting for j in self.jobs if j.state in ("queued", "not started", "stopped", "cancelled")]
        running = [(j.setting, max(0.0, self.read_at - j.holder.started)) for j in self.jobs
                   if j.state == "running" and j.holder is not None]
        return eta_seconds(finished, left, running, parallel=max(1, len(running)))


def read_status(folder: str | Path, ask_cluster: bool = True) -> SweepStatus:
    """The status of a sweep folder (holding jobs.json) or a run folder (holding records.jsonl)."""
    folder = Path(folder)
    if (folder / "jobs.json").is_file():
        try:
            listed = json.loads((folder / "jobs.json").read_text(encoding="utf-8"))
            jobs = [JobStatus(str(item["id"]), str(item.get("job", item["id"])), folder / str(item["id"]),
                              setting=str(item.get("setting") or "")) for item in listed]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{folder / 'jobs.json'}: not a readable job list ({type(exc).__name__})") from None
        locks = {j.id: folder / ".locks" / f"{j.id}.lock" for j in jobs}
        status = SweepStatus(folder, jobs)
    elif (folder / RECORDS_NAME).is_file() or (folder / LOCK_NAME).is_file():
        job = JobStatus(folder.name, folder.name, folder)
        locks = {job.id: folder / LOCK_NAME}
        status = SweepStatus(folder, [job], is_sweep=False)
    else:
        raise ConfigError(f"{folder} is neither a sweep folder (no jobs.json) nor a run folder (no {RECORDS_NAME}); "
                          f"give the --out of `dagrad sweep` or `dagrad train`")
    for job in status.jobs:
        _read_job(job, locks[job.id])
    if status.is_sweep:
        _mark_starting(status)
    # submitted, and not started since (never attempted, or resubmitted after its last attempt)
    waiting = {j.id: j.submission for j in status.jobs if j.submission is not None
               and (j.state == "not started" or j.state in ("stopped", "failed") and _after_attempt(j))}
    alive = alive_submissions(waiting) if waiting and ask_cluster else {}
    for job in status.jobs:
        if job.id in alive:
            job.state, job.cluster_state = "queued", alive[job.id]
        elif job.id in waiting and not ask_cluster and job.state == "not started":
            job.state = "queued"  # submitted; the cluster was not asked, so not known to have gone
    if ask_cluster:
        _ended_on_the_cluster([j for j in status.jobs if j.id not in alive and j.submission is not None
                               and j.submission.cluster == "slurm" and j.state in ("failed", "stopped", "not started")])
    return status


def _mark_starting(status: SweepStatus) -> None:
    """Jobs a live launcher has handed to a worker that has not taken the job's lock yet are `starting`."""
    from dagrad.launch.launcher_mark import live_launchers

    live = live_launchers(status.folder)
    status.launchers = [holder for holder, _ in live]
    starting = {job_id: holder for holder, ids in live for job_id in ids}
    for job in status.jobs:
        if job.id in starting and job.state in ("not started", "stopped", "failed", "queued", "cancelled"):
            job.state, job.holder = "starting", starting[job.id]


def _ended_on_the_cluster(jobs: list[JobStatus]) -> None:
    """The cluster's final word on Slurm jobs that ended unfinished (one sacct call): kept as
    `cluster_state`; a cancelled one becomes `cancelled`."""
    if not jobs:
        return
    states = slurm_states(j.submission.job_id for j in jobs)
    for job in jobs:
        state = states.get(job.submission.job_id, "UNKNOWN")
        if state == "UNKNOWN":
            continue
        job.cluster_state = state
        if state in CANCELLED_STATES:
            job.state = "cancelled"


def _after_attempt(job: JobStatus) -> bool:
    """Whether the job was submitted after its last attempt's log line (so that attempt is not the end)."""
    try:
        return job.submission is not None and job.submission.submitted >= (job.folder / "log.txt").stat().st_mtime
    except OSError:
        return True


def _read_job(job: JobStatus, lock: Path) -> None:
    job.submission = read_submission(job.folder)
    records = _records(job.folder / RECORDS_NAME)
    if records:
        header = records[0] if records[0].get("type") == "header" else {}
        job.epochs = (header.get("config") or {}).get("epochs")
        job.epoch = sum(1 for line in records if line.get("type") == "epoch")
        _energy(job, records)
        try:
            job.last_update = (job.folder / RECORDS_NAME).stat().st_mtime
        except OSError:
            pass
    elif (job.folder / "config.json").is_file():
        try:
            job.epochs = json.loads((job.folder / "config.json").read_text(encoding="utf-8")).get("epochs")
        except (OSError, ValueError, AttributeError):
            pass
    job.last_log_line, failed = _log_tail(job.folder / "log.txt")
    if (job.folder / "done").is_file():
        job.state = "done"
        try:
            job.seconds = float(json.loads((job.folder / "done").read_text(encoding="utf-8"))["seconds"])
        except (OSError, ValueError, TypeError, KeyError):
            pass
        return
    holder = holder_of(lock)
    if holder is not None:
        job.state, job.holder = "running", holder
        try:
            job.heartbeat_age = max(0.0, time.time() - lock.stat().st_mtime)
        except OSError:
            pass
    elif records and records[-1].get("type") == "summary":
        job.state = "done"  # a run folder (no done marker there): its summary line is the end
    elif failed:
        job.state = "failed"
    elif records or job.last_log_line:
        job.state = "stopped"


def _records(path: Path) -> list[dict]:
    try:
        return read_records(path) if path.is_file() else []
    except RecordsError:
        return []


def _energy(job: JobStatus, records: list[dict]) -> None:
    from dagrad.energy.ledger import job_energy
    from dagrad.energy.reading import Reading

    summary = records[-1] if records[-1].get("type") == "summary" else None
    try:
        reading = Reading.from_dict(summary["run_energy"]) if summary and summary.get("run_energy") else \
            job_energy(records, [])
    except (ValueError, KeyError, TypeError):
        job.energy_unknown = True
        return
    job.energy_sources = reading.sources
    if reading.components and any(c.joules is None for c in reading.components.values()):
        job.energy_unknown = True
    job.joules = reading.joules


def _log_tail(path: Path, size: int = 16384) -> tuple[str, bool]:
    """The log's last non-empty line, and whether its last attempt (after the last `--- ` start line of
    the worker or task) ended in an error."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return "", False
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "", False
    starts = [i for i, line in enumerate(lines) if _ATTEMPT.match(line)]
    attempt = lines[starts[-1]:] if starts else lines
    failed = any(line.startswith(_FAILURE_MARKS) for line in attempt) and not lines[-1].startswith("--- finished")
    return lines[-1], failed


__all__ = ["CANCELLED_STATES", "JobStatus", "QUEUED_STATES", "STATES", "SweepStatus", "read_status"]
