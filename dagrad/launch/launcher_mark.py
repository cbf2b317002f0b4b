"""A running launcher marks the sweep folder, so `dagrad status --watch` follows a sweep until its
launcher has ended, gaps between jobs included.

Each launch holds a lock file of its own, `<sweep>/.launchers/<token>.lock` (dagrad.run.lock: host,
PID, heartbeat; a killed launcher's mark is stale at once on its host, and after the stale timeout
elsewhere), beside `<token>.jobs.json`, the jobs it has handed to a worker that has not ended yet. Both
go when the launch ends. No launch waits for another's mark: two launchers at once are allowed (each
job's own lock keeps them apart). A job a live launcher has started, whose worker has not yet taken the
job's lock, is `starting`. It imports nothing of the grid or runner: `dagrad status` reads these marks
without loading torch (the launch's progress keeps the list: runner.MarkedProgress)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from dagrad.utils.atomic import write_text_atomic
from dagrad.run.lock import FolderLock, Holder, holder_of

MARKS_DIR = ".launchers"


class LauncherMark:
    """`with LauncherMark(sweep_folder) as mark:` marks a live launch; `mark.started(id)` / `mark.ended(id)`
    keep its list of jobs handed to workers."""

    def __init__(self, sweep_folder: str | Path):
        token = uuid.uuid4().hex[:12]
        folder = Path(sweep_folder) / MARKS_DIR
        self.lock = FolderLock(folder / f"{token}.lock", f"sweep launcher {token}")
        self.jobs_file = folder / f"{token}.jobs.json"
        self.jobs: list[str] = []

    def __enter__(self) -> "LauncherMark":
        self.lock.acquire()
        self._write()
        return self

    def __exit__(self, *exc: object) -> None:
        self.jobs_file.unlink(missing_ok=True)
        self.lock.release()

    def started(self, job_id: str) -> None:
        self.jobs.append(job_id)
        self._write()

    def ended(self, job_id: str) -> None:
        if job_id in self.jobs:
            self.jobs.remove(job_id)
            self._write()

    def _write(self) -> None:
        write_text_atomic(self.jobs_file, json.dumps(sorted(self.jobs)) + "\n")


def live_launchers(sweep_folder: str | Path) -> list[tuple[Holder, set[str]]]:
    """The launches marking `sweep_folder` whose process is alive: who, and the jobs they are starting."""
    found = []
    for lock in sorted((Path(sweep_folder) / MARKS_DIR).glob("*.lock")):
        holder = holder_of(lock)
        if holder is None:
            continue
        try:
            jobs = json.loads(lock.with_name(lock.name.replace(".lock", ".jobs.json")).read_text())
            ids = {str(j) for j in jobs} if isinstance(jobs, list) else set()
        except (OSError, ValueError):
            ids = set()
        found.append((holder, ids))
    return found
