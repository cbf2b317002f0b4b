"""The `slurm` launcher: sweep jobs as a Slurm job array, through submitit (`pip install dagrad[slurm]`).

    dagrad sweep -c configs/sweeps/pacs.yaml --launcher slurm      # options from the sweep's `launcher:` block

`submit(jobs)` packs the jobs into array tasks (`jobs_per_task` jobs each, run one after another by
dagrad's worker), submits them as one array (at most `array_parallelism` tasks at once), writes each job's
cluster id into its folder (`slurm.json`) and returns at once. `launch(jobs)` submits and, with
`wait: true`, follows the tasks until they end. Before anything is submitted the datasets' file indexes
are built here, once, so the tasks do not all scan the data at the same time. A relaunch submits only the
jobs that are neither done nor queued or running on the cluster (see slurm_state.py).

Tasks requeue themselves on preemption and timeout (slurm_task.py); the jobs resume from their epoch
checkpoint. With `tasks_per_node` > 1 each job trains on that many GPUs (one rank per Slurm task).
`cluster: local` runs the same tasks as local processes (submitit's LocalExecutor) and `cluster: debug`
in this process: a way to try a sweep's cluster setup on a workstation."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from dagrad.utils.errors import ConfigError, LaunchError
from dagrad.launch.jobs import BUSY_EXIT, DONE_NAME, Job
from dagrad.launch.runner import JobResult, Progress
from dagrad.launch.slurm_options import SLURM_OPTIONS
from dagrad.launch.slurm_state import Submission, alive_submissions, read_submission, write_submission

SUBMITIT_FOLDER = ".submitit"
#: `cluster: local` tasks left running when a launch returns without waiting: their controller processes
#: outlive the launch by design, so their handles are kept for the life of this process (dropping one whose
#: process still runs would be reported as a leaked "subprocess N is still running")
_LEFT_RUNNING: list[Any] = []


def fatal_line(text: str) -> str:
    """The line of sbatch's output that says why it failed: the last error line ("Batch job submission
    failed: ..." comes last), else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fail" in line.lower()]
    return (errors or lines or [""])[-1]


def require_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError("--launcher slurm needs submitit: pip install 'dagrad[slurm]'") from None
    return submitit


class SubmititLauncher:
    """Sweep jobs as submitit tasks on Slurm (or locally, see the module docstring)."""

    name = "slurm"

    def __init__(self, workers: int = 1, threads: Optional[int] = None, **options: Any):
        require_submitit()
        self.options = {k: options.get(k, opt.default) for k, opt in SLURM_OPTIONS.items()}
        unknown = sorted(set(options) - set(SLURM_OPTIONS))
        if unknown:
            raise ConfigError(f"launcher.{unknown[0]}: not an option of slurm; allowed: {', '.join(SLURM_OPTIONS)}")
        self.threads = threads or self.options["cpus_per_task"]
        self.handles: list[Any] = []

    @property
    def world_size(self) -> int:
        return self.options["nodes"] * self.options["tasks_per_node"]

    # ------------------------------------------------------------------ submission
    def folder(self, sweep_folder: Path) -> Path:
        """Where submitit keeps the tasks' pickles and logs (on Slurm, one subfolder per task)."""
        return (Path(self.options["folder"]) if self.options["folder"] else sweep_folder / SUBMITIT_FOLDER).absolute()

    def private_folder(self, sweep_folder: Path) -> Path:
        """`folder`, created readable and writable by the owner only whatever the umask: the nodes unpickle
        the task files it holds, so no one else may write there. dagrad's own `.submitit` is made 0700 even
        when it exists; a folder the user named is set so only when dagrad creates it."""
        folder = self.folder(sweep_folder)
        created = not folder.exists()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if created or not self.options["folder"]:
            os.chmod(folder, 0o700)
        return folder

    def executor(self, sweep_folder: Path) -> Any:
        """The submitit executor for this sweep, with every resource option set."""
        submitit = require_submitit()
        o = self.options
        folder = self.private_folder(sweep_folder)
        if o["cluster"] == "debug":
            return submitit.DebugExecutor(folder)
        if o["cluster"] == "local":
            executor = submitit.LocalExecutor(folder, max_num_timeout=o["max_timeouts"], python=o["python"])
            executor.update_parameters(timeout_min=o["timeout_min"], gpus_per_node=o["gpus_per_node"],
                                       tasks_per_node=o["tasks_per_node"], signal_delay_s=o["signal_delay_s"],
                                       setup=list(o["setup"]))
            return executor
        executor = submitit.SlurmExecutor(folder / "%j", max_num_timeout=o["max_timeouts"], python=o["python"])
        params = {"job_name": f"dagrad-{sweep_folder.name}", "time": o["timeout_min"], "nodes": o["nodes"],
                  "ntasks_per_node": o["tasks_per_node"], "cpus_per_task": o["cpus_per_task"],
                  "array_parallelism": o["array_parallelism"], "signal_delay_s": o["signal_delay_s"],
                  "setup": list(o["setup"]), "additional_parameters": dict(o["additional"]) or None}
        if o["gpus_per_node"]:
            params["gpus_per_node"] = o["gpus_per_node"]
        if o["mem_gb"] is not None:
            mem = o["mem_gb"]
            params["mem"] = f"{int(mem)}GB" if float(mem).is_integer() else f"{int(mem * 1024)}MB"
        if o["exclusive"]:
            params["exclusive"] = True
        for key in ("partition", "account", "qos", "constraint", "exclude"):
            if o[key]:
                params[key] = o[key]
        executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return executor

    def submit(self, jobs: Sequence[Job]) -> list[tuple[list[Job], Any]]:
        """Submit `jobs` (all of one sweep) as array tasks of `jobs_per_task` jobs; each job's folder gets
        its task's id. Returns (jobs, submitit handle) per task; does not wait."""
        from dagrad.launch.slurm_task import SweepTask

        if not jobs:
            return []
        o = self.options
        sweep_folder = Path(jobs[0].folder).parent
        executor = self.executor(sweep_folder)
        per = o["jobs_per_task"]
        groups = [list(jobs[i:i + per]) for i in range(0, len(jobs), per)]
        tasks = [SweepTask([str(j.folder) for j in group], group[0].plugins.worker_arguments(), self.threads,
                           o["python"], shared_node=not o["exclusive"]) for group in groups]
        said = io.StringIO()  # submitit echoes sbatch's stderr: held, so a refusal stays one line
        try:
            with contextlib.redirect_stderr(said):
                if o["cluster"] == "debug":  # the debug executor runs a task when its result is asked for
                    handles = [executor.submit(task) for task in tasks]
                else:
                    with executor.batch():
                        handles = [executor.submit(task) for task in tasks]
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal (bad partition, limits, ...) in one line
            from submitit.core.utils import FailedJobError, FailedSubmissionError

            if not isinstance(exc, (FailedJobError, FailedSubmissionError, OSError)):
                sys.stderr.write(said.getvalue())
                raise
            raise LaunchError(f"the cluster refused the sweep's jobs (nothing was submitted): "
                              f"{fatal_line(str(exc)) or type(exc).__name__}") from None
        sys.stderr.write(said.getvalue())  # sbatch's warnings on a submission that went through
        folder = str(self.folder(sweep_folder))
        for group, handle in zip(groups, handles):
            submission = Submission(str(handle.job_id), o["cluster"], folder, jobs_in_task=[j.id for j in group],
                                    pid_start=_pid_start(handle, o["cluster"]))
            for job in group:
                write_submission(job.folder, submission)
        self.handles = handles
        return list(zip(groups, handles))

    # ------------------------------------------------------------------ the Launcher protocol
    def launch(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]:
        """Build the data indexes, submit what is not queued or running already, and (with `wait`, or on the
        debug cluster) follow the tasks to their end. Jobs left queued are reported as `queued`."""
        from dagrad.launch.shared_work import build_indexes

        started = time.time()
        known = {j.id: s for j in jobs if (s := read_submission(j.folder)) is not None}
        alive = alive_submissions(known)
        queued = [j for j in jobs if j.id in alive]
        todo = [j for j in jobs if j.id not in alive]
        for job in queued:
            progress.say(f"  {job.id} is {alive[job.id].lower()} as {known[job.id].describe()}; not submitted again")
        if todo:
            build_indexes(todo, progress.say)
        submitted = self.submit(todo)
        if submitted:
            ids = sorted({str(handle.job_id).split("_")[0] for _, handle in submitted})
            progress.say(f"submitted {len(todo)} job(s) in {len(submitted)} task(s) to {self.options['cluster']} "
                         f"({', '.join(ids)}); task logs in {self.folder(todo[0].folder.parent)}")
        results = [JobResult(j, "queued", 0, 0.0) for j in queued]
        if not (self.options["wait"] or self.options["cluster"] == "debug"):
            if self.options["cluster"] == "local":
                _LEFT_RUNNING.extend(handle for _, handle in submitted)
            return results + [JobResult(j, "queued", 0, 0.0) for group, _ in submitted for j in group]
        return results + self._follow(submitted, progress, started)

    def _follow(self, submitted: list[tuple[list[Job], Any]], progress: Progress, started: float) -> list[JobResult]:
        """Wait for every task; a job is done when its done marker is there, else it failed (see its log)."""
        pending, results = list(submitted), []
        for group, _ in submitted:
            for job in group:
                progress.start(job)
        while pending:
            for item in list(pending):
                group, handle = item
                if self.options["cluster"] == "debug":
                    _run_debug(handle)
                elif not handle.done():
                    continue
                pending.remove(item)
                codes = _task_codes(handle)
                for k, job in enumerate(group):
                    code = codes[k] if codes and k < len(codes) else None
                    done = (job.folder / DONE_NAME).is_file()
                    status = "done" if done else "busy" if code == BUSY_EXIT else "failed"
                    result = JobResult(job, status, 0 if done else (code if code is not None else 1),
                                       time.time() - started)
                    progress.finish(result)
                    results.append(result)
            if pending:
                time.sleep(self.options["poll_s"])
        return results


def _pid_start(handle: Any, cluster: str) -> Optional[str]:
    if cluster != "local":
        return None
    from dagrad.run.lock import process_start

    return process_start(int(handle.job_id))


def _run_debug(handle: Any) -> None:
    """The debug executor runs a task in this process when its result is asked for; a failing task opens a
    debugger there, which a sweep must not do: the exception is kept as the job's failure instead."""
    import os

    os.environ.setdefault("PYTHONBREAKPOINT", "0")
    try:
        handle.submission().result()
    except Exception:  # noqa: BLE001 - reported as the jobs' failure, with their logs
        pass


def _task_codes(handle: Any) -> Optional[list[int]]:
    """The worker exit codes a finished task returned, or None when it ended without a result."""
    try:
        result = handle.submission().result() if hasattr(handle, "submission") and handle.submission().done() \
            else handle.result()
    except Exception:  # noqa: BLE001 - a task that failed or was cancelled: its jobs failed
        return None
    return list(result) if isinstance(result, (list, tuple)) else None
