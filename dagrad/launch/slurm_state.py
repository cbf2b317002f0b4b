"""Where a sweep job was submitted, and whether that submission is still alive.

The submitit launcher writes `slurm.json` into every job folder it submits: the cluster job id (an array
task: `<array id>_<index>`), the submitit folder holding the task's own logs, the host that submitted it
and when. A relaunch asks the cluster about those ids (one `sacct` call for all, through submitit's
watcher; `squeue` for ids accounting does not know, e.g. on clusters without slurmdbd) and never submits
a job whose id is still queued or running. `dagrad status` reads the same file."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from dagrad.utils.atomic import write_text_atomic

SUBMISSION_NAME = "slurm.json"

#: Slurm job states in which the job will still run (or is running): never submit it again
ALIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                          "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"})
QUEUED_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD"})


@dataclass
class Submission:
    """One job's submission: which cluster task runs it, and where that task's own logs are."""

    job_id: str  # Slurm: "<array id>_<index>" or "<id>"; local: the controller's PID; debug: "DEBUG_..."
    cluster: str  # slurm | local | debug
    submitit_folder: str
    host: str = field(default_factory=socket.gethostname)
    submitted: float = field(default_factory=time.time)
    jobs_in_task: list[str] = field(default_factory=list)  # the sweep jobs this task runs, in order
    pid_start: Optional[str] = None  # local: the controller's start time (tells a reused PID apart)

    def describe(self) -> str:
        what = {"slurm": "Slurm job", "local": "local submitit PID", "debug": "debug job"}.get(self.cluster, "job")
        return f"{what} {self.job_id}"


def write_submission(folder: Path, submission: Submission) -> None:
    write_text_atomic(Path(folder) / SUBMISSION_NAME, json.dumps(asdict(submission), indent=1) + "\n")


def read_submission(folder: Path) -> Optional[Submission]:
    """The job's last submission, or None (never submitted, or an unreadable file)."""
    try:
        data = json.loads((Path(folder) / SUBMISSION_NAME).read_text(encoding="utf-8"))
        return Submission(**{k: data[k] for k in Submission.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def _sacct_states(job_ids: list[str]) -> dict[str, str]:
    """States of Slurm job ids from one `sacct` call, through submitit's watcher ("UNKNOWN" when sacct
    does not know an id or cannot be run, or submitit is not installed here: `dagrad status` then asks squeue)."""
    try:
        from submitit.slurm.slurm import SlurmInfoWatcher
    except ImportError:
        return dict.fromkeys(job_ids, "UNKNOWN")

    watcher = SlurmInfoWatcher(delay_s=0)
    for job_id in job_ids:
        watcher.register_job(job_id)
    watcher.update()
    return {job_id: watcher.get_state(job_id, mode="cache").split()[0].upper() for job_id in job_ids}


def _squeue_states(job_ids: list[str]) -> dict[str, str]:
    """States of the ids `squeue` lists (queued or running ones only; the others are absent)."""
    mains = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--format=%i|%T", "--jobs", ",".join(mains)],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    states = {}
    for line in out.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and state:
            states[job_id] = state.split()[0].upper()
    return {j: states[j] for j in job_ids if j in states}


def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """The cluster's state of each Slurm job id: sacct first (one call for all), squeue for the ids sacct
    cannot tell; "UNKNOWN" where neither knows it."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    states = _sacct_states(ids)
    unknown = [j for j, s in states.items() if s == "UNKNOWN"]
    if unknown:
        states.update(_squeue_states(unknown))
    return states


def alive_submissions(submissions: dict[str, Submission]) -> dict[str, str]:
    """Which of these submissions (job name -> submission) will still run: job name -> cluster state, for
    the ones queued or running only."""
    from dagrad.run.lock import process_alive

    alive: dict[str, str] = {}
    slurm = {name: s for name, s in submissions.items() if s.cluster == "slurm"}
    states = slurm_states(s.job_id for s in slurm.values())
    for name, s in slurm.items():
        if states.get(s.job_id, "UNKNOWN") in ALIVE_STATES:
            alive[name] = states[s.job_id]
    for name, s in submissions.items():
        if s.cluster == "local" and s.host == socket.gethostname() and s.job_id.isdigit() \
                and process_alive(int(s.job_id), s.pid_start):
            alive[name] = "RUNNING"
    return alive
