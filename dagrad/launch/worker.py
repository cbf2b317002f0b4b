"""Run one sweep job in this process: `python -m dagrad.launch.worker JOB_FOLDER --threads N [--plugin X |
--allow-plugins]`.

Resumes from the checkpoint when there is a usable one; otherwise moves the old attempt aside and
starts again. Writes the `done` marker only after the engine has written the run's summary line. Holds
the job's lock (dagrad.run.lock: a lock file that works across the nodes of a cluster), so two
launches never train the same job at once. Plugins named by the job's config are imported only with
the consent the launcher was given, passed on this command line.

SIGTERM (a launcher stopping its workers, a preempted Slurm task) and SIGUSR2 (Slurm's warning before a
time limit or preemption) end the worker cleanly: the lock is released at once, so the job's next
attempt, on any node, can take it, and the run resumes from its last epoch checkpoint."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Optional

from dagrad.run.checkpoint import CHECKPOINT_NAME
from dagrad.utils.errors import BusyError, CheckpointError, DagradError
from dagrad.run.lock import FolderLock
from dagrad.launch.jobs import BUSY_EXIT, DONE_NAME, lock_path, mark_done, move_aside, read_job_experiment
from dagrad.plugins import NO_PLUGINS, PluginConsent, add_consent_arguments, consent_from, import_plugins
from dagrad.records.files import RECORDS_NAME
from dagrad.run.folder import remove_stale_temps

STOP_SIGNALS = ("SIGTERM", "SIGUSR2")
STOPPED_EXIT = 143  # 128 + SIGTERM, as a process killed by it


class Stopped(SystemExit):
    """A stop signal arrived: unwind (releasing the lock, closing the meter) and exit."""


def run_job(folder: Path, threads: Optional[int] = None, plugins: PluginConsent = NO_PLUGINS) -> int:
    """Train (or resume) the job in `folder`; 0 when done, BUSY_EXIT if locked elsewhere, 1 on failure.
    Started as one rank of several (WORLD_SIZE > 1: a multi-GPU Slurm task), rank 0 holds the lock and
    decides for all (dagrad.run.distributed)."""
    import torch

    from dagrad.run import distributed

    folder = Path(folder)
    if threads:
        torch.set_num_threads(max(1, threads))
    lock = None
    try:
        with distributed.session() as dist:
            lock, verdict = _claim(folder) if dist.main else (None, None)
            what, message = dist.broadcast_object(verdict)
            if what != "go":
                if message and dist.main:
                    print(message, flush=True)
                return {"done": 0, "busy": BUSY_EXIT}.get(what, 1)
            return _train(folder, plugins, dist)
    except DagradError as exc:  # a process group that could not start, or a collective that timed out
        print(f"dagrad: error: {exc}", flush=True)
        return 1
    finally:
        if lock is not None:
            lock.release()


def _claim(folder: Path) -> tuple:
    """Take the job's lock: (lock, ("go", "")) or (None or lock, (done | busy | error, message))."""
    try:
        lock = FolderLock(lock_path(folder), f"job {folder.name}").acquire()
    except BusyError as exc:
        return None, ("busy", f"{exc}; leaving it alone")
    except DagradError as exc:
        return None, ("error", f"dagrad: error: {exc}")
    if (folder / DONE_NAME).is_file():
        return lock, ("done", "")
    remove_stale_temps(folder)  # a stopped attempt's half-written checkpoint (we hold the lock: safe)
    return lock, ("go", "")


def _train(folder: Path, plugins: PluginConsent, dist) -> int:
    import torch

    from dagrad.federated.route import train_experiment as train  # a federated job runs on Flower, any other in the engine

    say = (lambda text: print(text, flush=True)) if dist.main else (lambda text: None)
    try:
        import_plugins(sorted(plugins.named), plugins)  # --plugin X: imported as the launcher did
        exp = read_job_experiment(folder, plugins)
        started = time.time()
        ranks = f", rank 0 of {dist.world}" if dist.active else ""
        say(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} job {folder.name}, pid {os.getpid()}, "
            f"{torch.get_num_threads()} threads{ranks}")
        resume = (folder / CHECKPOINT_NAME).is_file() or (folder / RECORDS_NAME).exists()
        try:
            train(exp, folder, resume=resume, progress="lines")
        except CheckpointError as exc:
            if not resume:
                raise
            if dist.main:
                _restart(folder, f"checkpoint unusable: {exc}")
            dist.barrier()
            train(exp, folder, resume=False, progress="lines")
        if dist.main:
            mark_done(folder, exp.run_id, time.time() - started)
        say(f"--- finished in {time.time() - started:.1f} s")
        return 0
    except DagradError as exc:
        print(f"dagrad: error: {exc}", flush=True)
        return 1
    except Exception:  # noqa: BLE001 - any failure of user code is reported in the log, never hidden
        traceback.print_exc(file=sys.stdout)
        return 1


def _restart(folder: Path, reason: str) -> None:
    moved = move_aside(folder, reason)
    print(f"restarting: {reason}; the old attempt is kept in {moved}", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    from dagrad.utils.notices import show_warning

    parser = argparse.ArgumentParser(prog="python -m dagrad.launch.worker")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threads", type=int)
    add_consent_arguments(parser)
    args = parser.parse_args(argv)
    warnings.showwarning = show_warning  # one line per distinct warning, as the CLI prints them
    stop_on_signals()
    return run_job(args.folder, args.threads, consent_from(args))


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGUSR2 into a clean exit (see the module docstring)."""
    def stop(signum: int, frame: object) -> None:
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} stopped by {signal.Signals(signum).name}; the job "
              f"resumes from its last epoch checkpoint", flush=True)
        raise Stopped(STOPPED_EXIT)

    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


if __name__ == "__main__":
    sys.exit(main())
