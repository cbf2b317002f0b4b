"""Helpers of the fault-injection suite (tests/faults/): the CLI's result, a snapshot of a folder tree (to
assert that nothing was written), and writes that fail with ENOSPC (disk full) or EROFS (read-only file
system) below one folder, injected where Python and dagrad touch the disk."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "data.eval_batch_size=512",
        "steps_per_epoch=2"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    def assert_one_line_error(self, *fragments: str) -> str:
        """Exit 2, exactly one line on stderr, an error line without a traceback, naming the fragments."""
        assert self.code == 2, (self.code, self.err)
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("dagrad: error: ") and "Traceback" not in self.err, self.err
        for fragment in fragments:
            assert fragment in line, (fragment, line)
        return line

    def assert_ends_with_error(self, *fragments: str) -> str:
        """Exit 2 after a run started (its progress lines come first): the last line is the error, no traceback."""
        assert self.code == 2, (self.code, self.err)
        line = self.err_lines[-1]
        assert line.startswith("dagrad: error: ") and "Traceback" not in self.err, self.err
        assert sum(x.startswith("dagrad: error: ") for x in self.err_lines) == 1, self.err
        for fragment in fragments:
            assert fragment in line, (fragment, line)
        return line


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder below `root`: relative path -> (kind, mode, content hash)."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            found[rel] = ("dir", path.stat().st_mode)
        else:
            found[rel] = ("file", path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _under(path, root: Path) -> bool:
    if isinstance(path, int):
        try:
            path = os.readlink(f"/proc/self/fd/{path}")
        except OSError:
            return False
    try:
        return Path(os.path.abspath(os.fspath(path))).is_relative_to(root)
    except TypeError:
        return False


class _FullFile:
    """A file whose writes fail as on a full disk (the file itself could be created)."""

    def __init__(self, real):
        self._real = real

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


def _writes(mode) -> bool:
    return isinstance(mode, str) and any(c in mode for c in "wax+")


def install_failing_writes(monkeypatch, root: Path, code: int) -> None:
    """From now on, writes below `root` fail with `code`: EROFS: creating, renaming or writing anything
    fails (a read-only mount); ENOSPC: files and folders can be created but no byte can be written."""
    root = Path(root).resolve()
    error = OSError(code, os.strerror(code))
    real_open, real_os_open, real_fdopen = builtins.open, os.open, os.fdopen
    real_mkdir, real_replace, real_rename, real_link = os.mkdir, os.replace, os.rename, os.link

    def fail(*paths):
        if any(_under(p, root) for p in paths):
            raise OSError(error.errno, error.strerror, str(paths[0]))

    def fake_open(file, mode="r", *args, **kwargs):
        if _writes(mode) and _under(file, root):
            if code == errno.EROFS:
                fail(file)
            return _FullFile(real_open(file, mode, *args, **kwargs))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and code == errno.EROFS:
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return _FullFile(f) if _writes(mode) and _under(fd, root) else f

    def fake_mkdir(path, *args, **kwargs):
        if code == errno.EROFS:
            fail(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_move(real):
        def move(src, dst, *args, **kwargs):
            if code == errno.EROFS:
                fail(src, dst)
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "fdopen", fake_fdopen)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", fake_move(real_replace))
    monkeypatch.setattr(os, "rename", fake_move(real_rename))
    monkeypatch.setattr(os, "link", fake_move(real_link))
