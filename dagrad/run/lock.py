"""One process at a time in a folder: a lock file that works on network file systems.

The lock is a file created with O_EXCL (atomic on local disks and on NFS v3+), holding who took it:
host, PID, the PID's start time, when, and the Slurm job id when there is one. A heartbeat thread
touches it every HEARTBEAT_SECONDS while it is held. A lock is stale, and is taken over, when
- it was taken on this host and its process is gone (or its PID now belongs to another process), or
- it was taken on another host and has had no heartbeat for `stale_after` seconds (default
  DEFAULT_STALE_SECONDS, or $DAGRAD_LOCK_STALE_SECONDS), since that host's processes cannot be seen, or
- it was taken by an earlier run of this very Slurm job (same SLURM_JOB_ID, lower SLURM_RESTART_COUNT):
  Slurm requeued that run, so it has ended (on a node that failed, it could not release the lock).
A lock file whose content is not a holder (not JSON, or fields of the wrong type or impossible values,
such as a pid of "abc", 0 or 1e23) is garbage: it is taken over, with one warning, once it has not
changed for UNREADABLE_GRACE_SECONDS. A live holder is reported in one line naming the folder and the holder. flock() would not do: it is
not honoured across the nodes of many cluster file systems, and it says nothing about the holder."""

from __future__ import annotations

import json
import math
import os
import warnings
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from dagrad.utils.atomic import make_folders, remove_empty_folders, storage_error
from dagrad.utils.errors import BusyError

HEARTBEAT_SECONDS = 30.0
DEFAULT_STALE_SECONDS = 600.0
STALE_ENV = "DAGRAD_LOCK_STALE_SECONDS"
UNREADABLE_GRACE_SECONDS = 60.0  # a lock file without readable content yet (being written, or a crash)


@dataclass
class Holder:
    """Who holds a lock (the lock file's content)."""

    host: str
    pid: int
    pid_start: Optional[str]  # the process's start time as the kernel counts it (tells a reused PID apart)
    started: float  # seconds since the epoch
    token: str
    slurm_job_id: Optional[str] = None
    command: str = ""
    slurm_restart: Optional[int] = None  # SLURM_RESTART_COUNT: how often Slurm requeued the job before

    @classmethod
    def me(cls) -> "Holder":
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()), time.time(), uuid.uuid4().hex,
                   os.environ.get("SLURM_JOB_ID"), " ".join(sys.argv[:3])[:200], _restart_count())

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        slurm = f", Slurm job {self.slurm_job_id}" if self.slurm_job_id else ""
        return f"PID {self.pid} on {self.host} (since {since}{slurm})"


def process_start(pid: int) -> Optional[str]:
    """The start time of process `pid` in clock ticks after boot (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: Optional[str]) -> bool:
    """Whether `pid` runs here and, when its start time is known, is still the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    except OSError:
        return False
    now = process_start(pid)
    return start is None or now is None or now == start


def _restart_count() -> Optional[int]:
    value = os.environ.get("SLURM_RESTART_COUNT")
    if os.environ.get("SLURM_JOB_ID") is None:
        return None
    try:
        return int(value) if value else 0
    except ValueError:
        return None


def requeued_before(holder: Holder) -> bool:
    """Whether `holder` is an earlier run of the Slurm job this process belongs to (see the docstring)."""
    mine, restart = os.environ.get("SLURM_JOB_ID"), _restart_count()
    return (mine is not None and holder.slurm_job_id == mine and restart is not None
            and holder.slurm_restart is not None and holder.slurm_restart < restart)


def stale_seconds() -> float:
    value = os.environ.get(STALE_ENV)
    try:
        return float(value) if value else DEFAULT_STALE_SECONDS
    except ValueError:
        return DEFAULT_STALE_SECONDS


#: the largest PID any system hands out (Linux allows up to 2**22); a larger one is not a process
MAX_PID = 2 ** 31 - 1
#: lock start times past this (the year 2242) are not times
MAX_STARTED = 2.0 ** 33


def _optional(value: object, kind: type) -> bool:
    return value is None or (isinstance(value, kind) and not isinstance(value, bool))


def _holder_problem(data: object) -> Optional[str]:
    """What makes a lock file's parsed content not a holder (wrong-typed or impossible fields), or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    pid, started = data.get("pid"), data.get("started")
    if not (isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= MAX_PID):
        return f"pid {pid!r}"[:60]
    if not (isinstance(started, (int, float)) and not isinstance(started, bool) and math.isfinite(started)
            and 0 <= started < MAX_STARTED):
        return f"started {started!r}"[:60]
    for key, kind in (("host", str), ("token", str)):
        if not isinstance(data.get(key), kind) or not data[key]:
            return f"{key} {data.get(key)!r}"[:60]
    for key, kind in (("pid_start", str), ("slurm_job_id", str), ("command", str), ("slurm_restart", int)):
        if not _optional(data.get(key), kind):
            return f"{key} {data.get(key)!r}"[:60]
    return None


def read_holder(path: Path) -> Optional[Holder]:
    """The holder recorded in a lock file, or None if it cannot be read (missing, empty, garbled, or with
    fields of the wrong type or impossible values: a pid of "abc", 0 or 1e23, a start time of 1e400)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return None
    if _holder_problem(data) is not None:
        return None
    return Holder(**{k: data[k] for k in Holder.__dataclass_fields__ if k in data})


def garbage_reason(path: Path) -> Optional[str]:
    """Why the lock file at `path` holds no readable holder ("not JSON", "pid 'abc'", ...), or None when
    it does or is gone."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not text.strip():
        return "empty"
    try:
        data = json.loads(text)
    except ValueError:
        return "not JSON"
    return _holder_problem(data)


def is_stale(path: Path, holder: Optional[Holder], stale_after: Optional[float] = None) -> bool:
    """Whether the lock at `path` (held by `holder`) may be taken over; see the module docstring."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return True
    if holder is None:
        return age > UNREADABLE_GRACE_SECONDS
    if holder.host == socket.gethostname():
        return not process_alive(holder.pid, holder.pid_start)
    if requeued_before(holder):
        return True
    return age > (stale_seconds() if stale_after is None else stale_after)


def holder_of(path: Path) -> Optional[Holder]:
    """The live holder of the lock at `path`, or None when it is free or stale."""
    holder = read_holder(path)
    if not path.exists() or is_stale(path, holder):
        return None
    return holder


class FolderLock:
    """`with FolderLock(path, "run folder runs/x"):` holds the lock file `path` (see the module docstring).

    Folders created to hold the lock file are removed again on release when they are empty."""

    def __init__(self, path: str | Path, what: str, stale_after: Optional[float] = None):
        self.path, self.what, self.stale_after = Path(path), what, stale_after
        self.holder: Optional[Holder] = None
        self._created: list[Path] = []
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def acquire(self) -> "FolderLock":
        self._created = make_folders(self.path.parent)
        try:
            for _ in range(5):  # each round either takes the lock, reports its holder, or clears a stale one
                me = Holder.me()
                if self._create(me):
                    self.holder = me
                    break
                other = read_holder(self.path)
                if not is_stale(self.path, other, self.stale_after):
                    raise BusyError(self._busy_message(other))
                garbage = garbage_reason(self.path) if other is None else None
                if self._clear_stale(other) and garbage:
                    warnings.warn(f"{self.what}: took over the lock file {self.path}, whose content was not a dagrad "
                                  f"lock ({garbage}) and had not changed for {UNREADABLE_GRACE_SECONDS:.0f} s")
            else:
                raise BusyError(f"{self.what} is locked by {self.path}, which keeps changing hands; try again")
        except BaseException:
            self._remove_created()
            raise
        self._beat = threading.Thread(target=self._heartbeat, name="dagrad-lock-heartbeat", daemon=True)
        self._beat.start()
        return self

    def release(self) -> None:
        if self.holder is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        current = read_holder(self.path)
        if current is not None and current.token == self.holder.token:
            self.path.unlink(missing_ok=True)
        self.holder = None
        self._remove_created()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ internals
    def _create(self, me: Holder) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        except OSError as exc:
            raise storage_error(self.path, exc, "create the lock file") from None
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(asdict(me)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            raise storage_error(self.path, exc) from None
        return True

    def _clear_stale(self, seen: Optional[Holder]) -> bool:
        """Move the stale lock away under a unique name (only one contender's rename succeeds), check it is
        the one judged stale, and delete it; a fresh lock moved by mistake is put back. Returns whether the
        stale lock was the one removed."""
        moved = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error(self.path, exc, "take over the stale lock") from None
        now = read_holder(moved)
        same = (now is None and seen is None) or (now is not None and seen is not None and now.token == seen.token)
        if not same:
            try:
                os.link(moved, self.path)  # put the newer holder's lock back, unless yet another exists
            except OSError:
                pass
        moved.unlink(missing_ok=True)
        return same

    def _busy_message(self, other: Optional[Holder]) -> str:
        garbage = garbage_reason(self.path) if other is None else None
        if garbage and garbage != "empty":
            return (f"{self.what} is locked by {self.path}, whose content is not a dagrad lock ({garbage}); it is "
                    f"taken over once it has not changed for {UNREADABLE_GRACE_SECONDS:.0f} s (delete it if no dagrad "
                    f"process uses the folder)")
        who = other.describe() if other else f"a process that is still writing {self.path}"
        remote = other is not None and other.host != socket.gethostname()
        after = self.stale_after if self.stale_after is not None else stale_seconds()
        how = (f"it is taken over once it has had no heartbeat for {after:.0f} s ({STALE_ENV})" if remote
               else "it is taken over automatically once that process is gone")
        return f"{self.what} is in use by {who}; wait for it to finish or stop it ({how})"

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def _remove_created(self) -> None:
        remove_empty_folders(self._created)
        self._created = []
