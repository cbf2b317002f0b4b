"""One sweep job = one resolved configuration in its own folder OUT/<config hash>/.

The folder holds config.json (what to run), records.jsonl and checkpoint.pt (the engine's), log.txt
(the job's output, appended on every attempt) and, once the run has finished, a `done` marker written
atomically. A relaunch skips done jobs, resumes those with a usable checkpoint and restarts the rest
after moving their folder aside (nothing is deleted)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from dagrad.utils.atomic import write_text_atomic
from dagrad.run.checkpoint import CHECKPOINT_NAME
from dagrad.config.schema import to_dict
from dagrad.utils.errors import ConfigError
from dagrad.config.experiment import Experiment, experiment_from_dict
from dagrad.run.lock import holder_of
from dagrad.launch.grid import GridPoint, SweepSpec, check_order, describe, identity, in_order, point_experiment
from dagrad.plugins import NO_PLUGINS, PluginConsent
from dagrad.records.files import RECORDS_NAME
from dagrad.run.folder import KEEP, move_aside as _move_aside

CONFIG_NAME = "config.json"
DONE_NAME = "done"
LOG_NAME = "log.txt"
BUSY_EXIT = 75  # a worker's exit code when another process holds the job's lock (EX_TEMPFAIL)


@dataclass
class Job:
    """A configuration to run, where it runs, and the grid point it came from."""

    id: str
    experiment: Experiment
    point: GridPoint
    folder: Path
    plugins: PluginConsent = NO_PLUGINS  # the consent the job was validated with; its worker gets the same

    @property
    def name(self) -> str:
        return describe(self.point)

    @property
    def log(self) -> Path:
        return self.folder / LOG_NAME

    def state(self) -> str:
        """done | running (its lock is held by a live process, this launch's or another's) | partial (has
        records, will resume or restart) | new."""
        if (self.folder / DONE_NAME).is_file():
            return "done"
        if holder_of(lock_path(self.folder)) is not None:
            return "running"
        if (self.folder / RECORDS_NAME).exists() or (self.folder / CHECKPOINT_NAME).exists():
            return "partial"
        return "new"


def expand(sweep: SweepSpec, out: Path, plugins: PluginConsent = NO_PLUGINS, order: str = "side-by-side") -> list[Job]:
    """Every job of the sweep, validated (a bad grid point raises before anything is written): everything a
    job checks at start that needs no data or training (names, options, hyperparameter ranges, the
    dataset's environments, plugin consent), in job order `order` (grid.ORDERS).

    Grid points that resolve to the same configuration are one job (listed once, the first point in the
    grid's order kept, whatever the job order)."""
    check_order(order)
    jobs: dict[str, Job] = {}
    for point in sweep.points:
        exp = point_experiment(sweep, point, plugins)
        key = identity(exp)
        jobs.setdefault(key, Job(key, exp, point, Path(out) / key, plugins))
    return in_order(list(jobs.values()), lambda job: job.point, order)


def prepare(job: Job) -> None:
    """Write the job's config.json (atomically; the same content on every launch)."""
    text = json.dumps(to_dict(job.experiment.cfg), indent=1, sort_keys=True) + "\n"
    write_text_atomic(job.folder / CONFIG_NAME, text)


def read_job_experiment(folder: Path, plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    path = Path(folder) / CONFIG_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable job description ({type(exc).__name__}: {exc})") from None
    return experiment_from_dict(data, plugins)


def mark_done(folder: Path, run_id: str, seconds: float) -> None:
    write_text_atomic(Path(folder) / DONE_NAME, json.dumps(
        {"run_id": run_id, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3)}) + "\n")


def move_aside(folder: Path, reason: str) -> Path:
    """Move an unusable attempt's files (records, checkpoint, ...) to <folder>.broken-<time>[-n]/ so the
    job can start afresh; config.json, the log and the cluster submission (slurm.json) stay. Nothing is
    deleted."""
    return _move_aside(folder, reason, KEEP + ("slurm.json",))


def lock_path(folder: Path) -> Path:
    """The job's lock lives beside the job folders, so moving an attempt aside never moves the lock."""
    return Path(folder).parent / ".locks" / f"{Path(folder).name}.lock"
