"""What one submitit array task runs: dagrad's worker (`python -m dagrad.launch.worker`) on each of its job
folders in turn, output appended to each job's log.

The task is `submitit.helpers.Checkpointable`: on preemption or when its time limit nears, Slurm signals it
(USR2, `signal_delay_s` before the end), submitit calls `checkpoint`, which stops the running worker (the
worker releases the job's lock and exits; its last epoch checkpoint is on disk) and hands back the same
task, which submitit requeues. The requeued task skips the jobs that are done and resumes the others from
their checkpoint. A task with several Slurm tasks (`tasks_per_node` x `nodes` > 1) trains each job on
all of them at once: every Slurm task starts the job's worker with its rank, as torchrun would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Optional

from submitit.helpers import Checkpointable

from dagrad.energy.rapl import SHARED_NODE_ENV

DONE_NAME = "done"  # dagrad.launch.jobs.DONE_NAME (not imported: the task starts without torch)
BUSY_EXIT = 75  # dagrad.launch.jobs.BUSY_EXIT: another launch holds the job's lock (not a failure)
LOG_NAME = "log.txt"
STOP_GRACE_SECONDS = 30.0


class SweepTask(Checkpointable):
    """Runs the worker on `folders` one after another; returns each job's worker exit code, or raises
    (after running them all) when any job failed, so that the task ends FAILED on the cluster."""

    def __init__(self, folders: list[str], worker_args: list[str], threads: int, python: Optional[str] = None,
                 shared_node: bool = True):
        self.folders, self.worker_args, self.threads = list(folders), list(worker_args), int(threads)
        self.python, self.shared_node = python or sys.executable, shared_node
        self._worker: Optional[subprocess.Popen] = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_worker"] = None  # a running process does not travel with the requeued task
        return state

    def __call__(self) -> list[int]:
        ranks = _ranks()
        codes = []
        for index, folder in enumerate(self.folders):
            if ranks["WORLD_SIZE"] == "1" and (Path(folder) / DONE_NAME).is_file():
                codes.append(0)  # done before this attempt (a requeue): no worker needed
                continue
            codes.append(self._run(Path(folder), index, ranks))
        failed = [f"{Path(folder).name} (exit {code})" for folder, code in zip(self.folders, codes)
                  if code not in (0, BUSY_EXIT)]
        if failed:  # the cluster then records the task as FAILED (sacct, `dagrad status`), not COMPLETED
            raise RuntimeError(f"{len(failed)} of {len(codes)} job(s) failed: {', '.join(failed)}; see each job's "
                               f"{LOG_NAME}")
        return codes

    def checkpoint(self, *args, **kwargs):  # noqa: ANN201 - submitit's DelayedSubmission
        """Preempted or timing out: stop the worker (its epoch checkpoint is kept), then requeue this task."""
        self.stop_worker()
        return super().checkpoint(*args, **kwargs)

    def stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None or worker.poll() is not None:
            return
        worker.terminate()  # the worker turns SIGTERM into a clean exit: lock released, files intact
        if _poll(worker, STOP_GRACE_SECONDS) is None:
            worker.kill()
            _poll(worker, 5.0)

    def _run(self, folder: Path, index: int, ranks: dict[str, str]) -> int:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        if self.shared_node:
            env[SHARED_NODE_ENV] = "slurm"  # other jobs may share the node: RAPL attributed by CPU share
        if ranks["WORLD_SIZE"] != "1":
            env.update(ranks, MASTER_PORT=str(_port(ranks["MASTER_PORT"], index)))
        command = [self.python, "-m", "dagrad.launch.worker", str(folder), "--threads", str(self.threads),
                   *self.worker_args]
        rank = f", rank {ranks['RANK']}/{ranks['WORLD_SIZE']}" if ranks["WORLD_SIZE"] != "1" else ""
        with open(folder / LOG_NAME, "a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} submitit task {_task_id()}{rank} on "
                      f"{os.uname().nodename}, CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '')}\n")
            log.flush()
            self._worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env)
            code = _poll(self._worker)
        self._worker = None
        return code if code is not None else 1


def _poll(worker: subprocess.Popen, seconds: Optional[float] = None) -> Optional[int]:
    """The worker's exit code once it has ended (None after `seconds`). Never `Popen.wait()`: the stop
    signal's handler polls the same process, and `wait` holds a lock the handler would wait on forever."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while (code := worker.poll()) is None:
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    return code


def _task_id() -> str:
    try:
        import submitit

        return submitit.JobEnvironment().job_id
    except Exception:  # noqa: BLE001 - outside a submitit job (a test calling the task directly)
        return "(not under submitit)"


def _ranks() -> dict[str, str]:
    """torchrun's variables for this Slurm task (one rank per Slurm task of the job)."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        world, rank, local = env.num_tasks, env.global_rank, env.local_rank
        master, job = env.hostnames[0], env.job_id
    except Exception:  # noqa: BLE001 - outside a submitit job: one process
        world, rank, local, master, job = 1, 0, 0, "127.0.0.1", "0"
    base = 20000 + zlib.crc32(str(job).encode()) % 20000
    return {"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(local),
            "LOCAL_WORLD_SIZE": str(max(1, world // max(1, _nodes()))), "MASTER_ADDR": master,
            "MASTER_PORT": str(base)}


def _nodes() -> int:
    try:
        import submitit

        return submitit.JobEnvironment().num_nodes
    except Exception:  # noqa: BLE001
        return 1


def _port(base: str, index: int) -> int:
    """A fresh rendezvous port for the task's `index`-th job (the previous job's may linger in TIME_WAIT)."""
    return 20000 + (int(base) - 20000 + 97 * index) % 20000
