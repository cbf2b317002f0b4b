"""Launchers run sweep jobs: `local` (one after another in this process), `processes` (N worker
subprocesses at once) and `slurm` (a Slurm job array through submitit, launch/slurm.py). All follow the
`Launcher` protocol and are registered in `LAUNCHERS`, where a plugin's launcher registers the same way
(or an installed package's, through the entry-point group `dagrad.launchers`). A failed job is reported with its log and never
stops the others.

On a GPU node the `processes` launcher gives each worker slot its own GPU, round-robin over the GPUs the
launcher sees (its CUDA_VISIBLE_DEVICES, else every GPU torch counts), through the worker's
CUDA_VISIBLE_DEVICES; each job then trains on, and meters, its own GPU. With more workers than GPUs,
workers share GPUs in turn. Several workers at once also mark the node as shared (DAGRAD_SHARED_NODE),
so each job's RAPL CPU energy is attributed by its share of CPU time."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol, Sequence, TextIO

from dagrad.energy.hardware import usable_cpus
from dagrad.energy.rapl import SHARED_NODE_ENV
from dagrad.launch.eta import eta_seconds, format_eta
from dagrad.launch.jobs import BUSY_EXIT, Job
from dagrad.launch.slurm_options import SLURM_OPTIONS
from dagrad.registry import Registry

if TYPE_CHECKING:
    from dagrad.launch.launcher_mark import LauncherMark

# dagrad.launch.worker is imported only where a job runs in this process (LocalLauncher): the package must
# not import it, or `python -m dagrad.launch.worker` starts with runpy's "found in sys.modules" warning


@dataclass
class JobResult:
    job: Job
    status: str  # done | failed | busy (running in another launch, which holds its lock) | queued (on a cluster)
    returncode: int
    seconds: float


def worker_command(job: Job, threads: int, python: str = sys.executable) -> list[str]:
    """The command that runs one job in its own process, with the consent the sweep was given (cluster
    launchers submit the same command)."""
    return [python, "-m", "dagrad.launch.worker", str(job.folder), "--threads", str(threads),
            *job.plugins.worker_arguments()]


class Progress:
    """Counts of done / running / failed / left and, once a job has finished, when the rest will end (eta.py),
    printed as one plain line whenever they change. `jobs`: the jobs this launch runs (their settings feed
    the estimate). A closed output (`dagrad sweep | head`) silences the lines; the sweep carries on."""

    def __init__(self, total: int, already_done: int, stream: Optional[TextIO] = sys.stdout,
                 jobs: Sequence[Job] = ()):
        self.total, self.done, self.running, self.failed, self.busy = total, already_done, 0, 0, 0
        self.started, self.stream = time.time(), stream
        self.waiting = [_setting(job) for job in jobs]  # settings of the jobs not started yet
        self.timing: dict[str, tuple[str, float]] = {}  # running: job id -> (setting, start time)
        self.durations: list[tuple[str, float]] = []  # finished jobs: (setting, seconds)

    @property
    def left(self) -> int:
        return self.total - self.done - self.running - self.failed - self.busy

    def line(self) -> str:
        busy = f" | elsewhere {self.busy}" if self.busy else ""
        eta = format_eta(self.eta()) if self.running or self.left else ""
        return (f"[{time.time() - self.started:6.0f}s] done {self.done}/{self.total} | running {self.running} | "
                f"failed {self.failed}{busy} | left {self.left}" + (f" | {eta}" if eta else ""))

    def eta(self) -> Optional[float]:
        """Seconds until the jobs left and running end, from this launch's finished jobs (None before one)."""
        now = time.time()
        running = [(setting, now - since) for setting, since in self.timing.values()]
        return eta_seconds(self.durations, self.waiting, running, parallel=max(1, self.running))

    def say(self, text: str) -> None:
        """A line of its own (a launcher's note: jobs submitted, data indexed, ...)."""
        if self.stream is not None:
            try:
                print(text, file=self.stream, flush=True)
            except BrokenPipeError:
                self.stream = None
                silence_stdout()

    def start(self, job: Job) -> None:
        self.running += 1
        setting = _setting(job)
        if setting in self.waiting:
            self.waiting.remove(setting)
        self.timing[job.id] = (setting, time.time())
        self._print()

    def finish(self, result: JobResult) -> None:
        self.running -= 1
        setting, since = self.timing.pop(result.job.id, (_setting(result.job), time.time() - result.seconds))
        if result.status == "done":
            self.durations.append((setting, time.time() - since))
            self.done += 1
        elif result.status == "busy":
            self.busy += 1
        else:
            self.failed += 1
        extra = f"  FAILED {result.job.id} ({result.job.name}); log: {result.job.log}" \
            if result.status == "failed" else f"  {result.job.id} is running in another launch; left alone" \
            if result.status == "busy" else ""
        self._print(extra)

    def _print(self, extra: str = "") -> None:
        if self.stream is not None:
            try:
                print(self.line() + extra, file=self.stream, flush=True)
            except BrokenPipeError:
                self.stream = None
                silence_stdout()


class MarkedProgress(Progress):
    """The launcher's progress lines, keeping its mark's job list as jobs start and end."""

    def __init__(self, total: int, already_done: int, stream: Optional[TextIO], mark: "LauncherMark",
                 jobs: Sequence[Job] = ()):
        super().__init__(total, already_done, stream, jobs)
        self.mark = mark

    def start(self, job: Job) -> None:
        self.mark.started(job.id)
        super().start(job)

    def finish(self, result: JobResult) -> None:
        self.mark.ended(result.job.id)
        super().finish(result)

def _setting(job: Job) -> str:
    """The job's GradSamp setting (its duration's best predictor); "" for a job without a grid point."""
    return str(getattr(getattr(job, "point", None), "setting", ""))


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so no later write or the flush at exit fails."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Launcher(Protocol):
    """Runs prepared jobs (folders with config.json) and reports one result per job."""

    name: str

    def launch(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]: ...


def _status(code: int) -> str:
    return "done" if code == 0 else "busy" if code == BUSY_EXIT else "failed"


class LocalLauncher:
    """Jobs one after another in this process (easy to debug; a crash of native code ends the sweep)."""

    name = "local"

    def __init__(self, workers: int = 1, threads: Optional[int] = None):
        self.threads = threads or max(1, usable_cpus() // max(1, workers))

    def launch(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]:
        from dagrad.launch.worker import run_job

        results = []
        for job in jobs:
            progress.start(job)
            started = time.time()
            with open(job.log, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                code = run_job(job.folder, self.threads, job.plugins)
            result = JobResult(job, _status(code), code, time.time() - started)
            progress.finish(result)
            results.append(result)
        return results


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker is killed when the launcher dies, so no orphan keeps training a job."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def visible_gpus(environ: Optional[dict] = None) -> list[str]:
    """The GPUs this process may hand to workers, as CUDA_VISIBLE_DEVICES entries: its own list when set
    (up to the first entry CUDA would stop at), else one index per GPU torch counts (none without CUDA)."""
    env = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        tokens = []
        for token in (t.strip() for t in env.split(",")):
            if not token or token.startswith("-"):
                break
            tokens.append(token)
        return tokens
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA runtime: CPU workers
        return []


class ProcessLauncher:
    """Up to `workers` jobs at once, each in its own `python -m dagrad.launch.worker` process with
    max(1, cores // workers) torch threads and, on a GPU node, its own GPU (see the module docstring);
    output goes to the job's log. `gpus` overrides the GPUs handed out (default: `visible_gpus()`)."""

    name = "processes"

    def __init__(self, workers: int = 1, threads: Optional[int] = None, poll_seconds: float = 0.2,
                 python: str = sys.executable, gpus: Optional[Sequence[str]] = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers, self.poll, self.python = workers, poll_seconds, python
        self.threads = threads or max(1, usable_cpus() // workers)
        self.gpus = [str(g) for g in gpus] if gpus is not None else visible_gpus()

    def worker_env(self, slot: int) -> dict[str, str]:
        """The environment of the worker in `slot` (0 .. workers-1): threads, its GPU, the shared-node mark."""
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        if self.workers > 1:
            env[SHARED_NODE_ENV] = str(self.workers)
        return env

    def _start(self, job: Job, slot: int) -> tuple[subprocess.Popen, float]:
        env = self.worker_env(slot)
        with open(job.log, "a") as log:
            if self.gpus:
                log.write(f"--- launcher: worker slot {slot}, CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}\n")
                log.flush()
            proc = subprocess.Popen(worker_command(job, self.threads, self.python), stdout=log,
                                    stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        return proc, time.time()

    def launch(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]:
        pending, running, results = list(jobs), {}, []
        free = list(range(self.workers))  # worker slots; a slot keeps its GPU for every job it runs
        try:
            while pending or running:
                while pending and free:
                    job, slot = pending.pop(0), free.pop(0)
                    running[job.id] = (job, *self._start(job, slot), slot)
                    progress.start(job)
                for key, (job, proc, started, slot) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del running[key]
                    free.append(slot)
                    free.sort()
                    result = JobResult(job, _status(code), code, time.time() - started)
                    progress.finish(result)
                    results.append(result)
                time.sleep(self.poll)
        finally:
            for _, proc, _, _ in running.values():  # interrupted: stop our own workers (resumable later)
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        return results


LAUNCHERS: Registry = Registry("launcher", "--launcher", builtins="dagrad.launch.runner", options_key="launcher")
LAUNCHERS.register("local", LocalLauncher, description="jobs one after another in this process (easy to debug)")
LAUNCHERS.register("processes", ProcessLauncher, description="up to --workers jobs at once, each in its own process")
LAUNCHERS.register("slurm", "dagrad.launch.slurm:SubmititLauncher", options=SLURM_OPTIONS,
                   description="a Slurm job array through submitit (pip install 'dagrad[slurm]'); options in the "
                               "sweep's launcher: block")


def build_launcher(name: str, workers: int = 1, options: Optional[dict] = None,
                   threads: Optional[int] = None) -> Launcher:
    """The launcher `name` for `workers` parallel jobs, with its own options (the sweep's `launcher:` block);
    `threads` (the command line's --threads) sets each job's torch threads instead of cores // workers."""
    extra = {"threads": threads} if threads else {}
    return LAUNCHERS.resolve(name, options).build(workers=workers, **extra)
