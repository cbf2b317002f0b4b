"""Run one sweep job in this process: `python -m dagrad.launch.worker JOB_FOLDER --threads N`.

Resumes from the checkpoint when there is a usable one; otherwise moves the old folder aside and
starts again. Writes the `done` marker only after the engine has written the run's summary line.
Holds an exclusive lock on the folder, so two launches never train the same job at once."""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
import traceback
from pathlib import Path

from dagrad.checkpoint import CHECKPOINT_NAME
from dagrad.errors import CheckpointError, DagradError
from dagrad.launch.jobs import DONE_NAME, lock_path, mark_done, move_aside, read_job_experiment
from dagrad.records import RECORDS_NAME

BUSY_EXIT = 75  # another process holds this job's lock


def run_job(folder: Path, threads: int | None = None) -> int:
    """Train (or resume) the job in `folder`; 0 when done, BUSY_EXIT if locked elsewhere, 1 on failure."""
    import torch

    from dagrad.engine import train

    folder = Path(folder)
    if threads:
        torch.set_num_threads(max(1, threads))
    lock = open(lock_path(folder), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"job {folder.name} is running in another process; leaving it alone", flush=True)
        return BUSY_EXIT
    try:
        if (folder / DONE_NAME).is_file():
            return 0
        exp = read_job_experiment(folder)
        started = time.time()
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} job {folder.name}, pid {os.getpid()}, "
              f"{torch.get_num_threads()} threads", flush=True)
        resume = (folder / CHECKPOINT_NAME).is_file()
        if not resume and (folder / RECORDS_NAME).exists():
            _restart(folder, "records without a checkpoint (stopped before the first epoch ended)")
        try:
            train(exp, folder, resume=resume, progress=False)
        except CheckpointError as exc:
            if not resume:
                raise
            _restart(folder, f"checkpoint unusable: {exc}")
            train(exp, folder, resume=False, progress=False)
        mark_done(folder, exp.run_id, time.time() - started)
        print(f"--- finished in {time.time() - started:.1f} s", flush=True)
        return 0
    except DagradError as exc:
        print(f"dagrad: error: {exc}", flush=True)
        return 1
    except Exception:  # noqa: BLE001 - any failure of user code is reported in the log, never hidden
        traceback.print_exc(file=sys.stdout)
        return 1
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _restart(folder: Path, reason: str) -> None:
    moved = move_aside(folder, reason)
    print(f"restarting: {reason}; the old attempt is kept in {moved}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagrad.launch.worker")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    return run_job(args.folder, args.threads)


if __name__ == "__main__":
    sys.exit(main())
