"""A run folder's life around one training run: locked for the run's whole life, temporary files of an
interrupted write removed, and an attempt that cannot be continued moved aside (never deleted).

    with open_run_folder(out, resume=True) as resume:   # False when there was nothing to resume
        Trainer(exp, out, resume=resume).run()

What happens to what is already in the folder:
- nothing there: a new run (`--resume` on an empty folder is an error that says so);
- a run, without `--resume` or `--restart`: an error naming both ways out;
- `--resume` with a checkpoint: the run continues (the engine checks the checkpoint);
- `--resume` with records but no checkpoint (the run stopped before its first epoch ended, e.g. a kill,
  a corrupt image or a full disk): nothing to continue, so the attempt is moved aside and the run starts
  afresh, as sweeps do;
- `--restart`: dagrad's files there are moved aside to `<folder>.broken-<time>/` and the run starts afresh.

Only what dagrad wrote (`RUN_FILES`, `RUN_PATTERNS`) is ever moved; other files in the folder stay.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from dagrad.utils.atomic import storage_error
from dagrad.run.checkpoint import CHECKPOINT_NAME
from dagrad.utils import errors
from dagrad.utils.errors import CheckpointError, ConfigError, DagradError
from dagrad.run.lock import FolderLock
from dagrad.records.files import RECORDS_NAME

if TYPE_CHECKING:  # the folder's rules need no torch; only a job of several processes brings it
    from dagrad.run.distributed import Distributed

LOCK_NAME = ".dagrad.lock"
#: what stays in place when an attempt is moved aside: the lock, and a sweep job's description and log
KEEP = (LOCK_NAME, "config.json", "log.txt")
#: the files written atomically in a run folder, whose `.NAME.*.tmp` leftovers a kill can leave behind
ATOMIC_FILES = (CHECKPOINT_NAME, RECORDS_NAME, "done")
#: every name dagrad writes in a run folder (files and folders; a component that writes a new one adds it
#: here); only these are ever moved aside, so a run in a project folder (`--out .`) never moves the project
RUN_FILES = (RECORDS_NAME, CHECKPOINT_NAME, "done", LOCK_NAME, "config.json", "log.txt", "slurm.json",
             "tensorboard", "wandb", "why-moved.txt",
             # kept models, saved predictions, evaluations and exports (dagrad.models)
             "models", "predictions", "evaluations", "exported")
#: patterns of dagrad's other files: records kept when they disagreed with the checkpoint, and the
#: leftovers of interrupted atomic writes
RUN_PATTERNS = (f"{RECORDS_NAME}.disagreed-*",) + tuple(f".{name}.*.tmp" for name in (RECORDS_NAME, CHECKPOINT_NAME, "done", "config.json",
                                                     "slurm.json", "jobs.json"))


def is_dagrads(item: Path) -> bool:
    """Whether `item`, in a run folder, is a file or folder dagrad writes there."""
    return item.name in RUN_FILES or any(item.match(p) for p in RUN_PATTERNS)


def _aside_target(folder: Path) -> Path:
    """`<folder>.broken-<time>[-n]`, beside the folder (which is made absolute, so `.` works too)."""
    folder = folder.absolute().resolve()
    if not folder.name:
        raise ConfigError(f"{folder}: cannot move a run aside from the file system's root; choose another --out")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.broken-{stamp}")
    n = 1
    while target.exists():
        target = folder.with_name(f"{folder.name}.broken-{stamp}-{n}")
        n += 1
    return target


def move_aside(folder: str | Path, reason: str, keep: tuple[str, ...] = KEEP) -> Path:
    """Move an attempt's files (records, checkpoint, ...) to `<folder>.broken-<time>[-n]/` with a note
    saying why, so the run can start afresh; the names in `keep` stay. Only what dagrad wrote is moved
    (`is_dagrads`): anything else in the folder stays where it is. Nothing is deleted."""
    folder = Path(folder)
    target = _aside_target(folder)
    try:
        target.mkdir(parents=True)
        for item in sorted(folder.iterdir()):
            if item.name not in keep and is_dagrads(item):
                item.rename(target / item.name)
        (target / "why-moved.txt").write_text(reason + "\n")
    except OSError as exc:
        raise storage_error(target, exc, "move the previous attempt to") from None
    return target


def foreign_files(folder: str | Path) -> list[str]:
    """The names in `folder` that dagrad did not write (left in place by `move_aside`)."""
    return sorted(item.name for item in Path(folder).iterdir() if not is_dagrads(item))


def remove_stale_temps(folder: str | Path, names: tuple[str, ...] = ATOMIC_FILES) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left (`.checkpoint.pt.*.tmp`, as large as a
    checkpoint). Only safe while the folder's lock is held: then no one else is writing them."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _left_in_place(folder: Path) -> str:
    others = foreign_files(folder)
    return f" ({len(others)} file(s) dagrad did not write left in place)" if others else ""


def _has_run(folder: Path) -> tuple[bool, bool]:
    return (folder / RECORDS_NAME).exists(), (folder / CHECKPOINT_NAME).exists()


@contextlib.contextmanager
def open_run_folder(folder: str | Path, resume: bool = False, restart: bool = False) -> Iterator[bool]:
    """Hold the folder's lock, tidy it and decide how the run starts (see the module docstring); yields
    whether to resume from the checkpoint."""
    folder = Path(folder)
    if resume and restart:
        raise ConfigError("--resume and --restart exclude each other: continue the run, or move it aside and "
                          "start afresh")
    with FolderLock(folder / LOCK_NAME, f"run folder {folder}"):
        remove_stale_temps(folder)
        records, checkpoint = _has_run(folder)
        if restart:
            if records or checkpoint:
                moved = move_aside(folder, "moved aside by --restart")
                warnings.warn(f"--restart: the previous attempt in {folder} is kept in {moved}; starting afresh"
                              f"{_left_in_place(folder)}")
            resume = False
        elif resume and not checkpoint:
            if not records:
                raise CheckpointError(f"cannot resume: {folder} holds no run (no {RECORDS_NAME} or "
                                      f"{CHECKPOINT_NAME}); start it without --resume")
            moved = move_aside(folder, "stopped before its first checkpoint; nothing to continue")
            warnings.warn(f"{folder} stopped before its first checkpoint, so there is nothing to resume; the "
                          f"attempt is kept in {moved} and the run starts afresh{_left_in_place(folder)}")
            resume = False
        elif not resume and (records or checkpoint):
            raise ConfigError(f"{folder} already holds a run; pass --resume to continue it, --restart to move it "
                              f"aside and start afresh, or choose another --out")
        yield resume


@contextlib.contextmanager
def shared_run_folder(dist: "Distributed", folder: str | Path, resume: bool = False,
                      restart: bool = False) -> Iterator[bool]:
    """`open_run_folder` for a job of one or several processes (dagrad.run.distributed): rank 0 alone holds
    the lock and tidies the folder, for the whole run (until every rank is done); its decision (resume or
    not), or its error with the same type and words, reaches every rank through a broadcast."""
    if not dist.active:
        with open_run_folder(folder, resume=resume, restart=restart) as decided:
            yield decided
        return
    if not dist.main:
        yield _from_main(dist, None)
        dist.barrier()  # rank 0 keeps the lock until every rank is done
        return
    decided = None
    try:
        with open_run_folder(folder, resume=resume, restart=restart) as decided:
            _from_main(dist, ("ok", decided))
            yield decided
            dist.barrier()
    except DagradError as exc:
        if decided is None:  # the folder was refused: the other ranks wait for word of it
            _from_main(dist, ("error", type(exc).__name__, str(exc)))
        raise


def _from_main(dist: "Distributed", message: Any) -> Any:
    """Rank 0's message on every rank; an error there is raised here too (same type and words)."""
    message = dist.broadcast_object(message)
    if message[0] == "error":
        raise getattr(errors, message[1], DagradError)(message[2])
    return message[1]
