"""Crash-safe file writes: a temporary file in the same folder, fsync, then an atomic rename.

The file gets the mode an ordinary `open(path, "w")` would give it (0666 less the umask), so lab-mates
can read results on a shared cluster when the umask lets them. A write that fails (disk full, read-only
folder, no permission) leaves the folder as it was and raises a StorageError naming the file."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable

from dagrad.utils.errors import StorageError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel says it (/proc/self/status)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (briefly process-wide, hence the lock)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def storage_error(path: str | Path, exc: OSError, doing: str = "write") -> StorageError:
    """One line for a failed write: the file, the reason and, for the usual causes, what to do."""
    hint = {errno.ENOSPC: "; the disk is full, free some space and run again",
            errno.EDQUOT: "; the disk quota is exceeded, free some space and run again",
            errno.EROFS: "; the file system is read-only, choose another folder",
            errno.EACCES: "; no permission, choose another folder or fix its permissions",
            errno.EPERM: "; no permission, choose another folder or fix its permissions"}.get(exc.errno, "")
    where = f"cannot {doing} {path}: " if str(path) else ""
    return StorageError(f"{where}{exc.strerror or exc}{hint}")


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a temporary file and move it over `path` only once it is complete on disk.

    The parent folder must exist or be creatable; folders created here are removed again if the write
    fails, so a failed write changes nothing."""
    path = Path(path)
    created = make_folders(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        _undo(tmp, created)
        raise storage_error(path, exc) from None
    except BaseException:
        _undo(tmp, created)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def make_folders(folder: str | Path) -> list[Path]:
    """Create `folder` and its missing parents (modes from the umask); returns the folders created,
    deepest first, for `remove_empty_folders` to undo. A failure removes what it created and raises a
    StorageError."""
    folder = Path(folder)
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    for item in reversed(missing):
        try:
            item.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            remove_empty_folders(created)
            raise storage_error(item, exc, "create the folder") from None
        created.insert(0, item)
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove the given folders (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _undo(tmp: str | None, created: list[Path]) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    remove_empty_folders(created)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; best effort (some file systems cannot fsync a folder), the file is in place."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
