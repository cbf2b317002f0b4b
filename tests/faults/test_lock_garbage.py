"""A lock file with wrong-typed or impossible content is garbage: never a crash, reported in one line
while fresh, and taken over with one warning once it has not changed for the grace period."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from dagrad.utils.errors import BusyError
from dagrad.run.lock import UNREADABLE_GRACE_SECONDS, FolderLock, garbage_reason, holder_of, read_holder

GOOD = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": None, "started": 0, "token": "x"}
GARBAGE = {
    "pid abc": {"pid": "abc"}, "pid 1.5": {"pid": 1.5}, "pid 1e23": {"pid": 10 ** 23}, "pid 0": {"pid": 0},
    "pid -1": {"pid": -1}, "pid true": {"pid": True}, "started x": {"started": "x"},
    "started 1e400": {"started": "__inf__"}, "started 1e23": {"started": 1e23}, "host 5": {"host": 5},
    "token list": {"token": [1]}, "pid_start 3": {"pid_start": 3}, "slurm_restart x": {"slurm_restart": "x"},
}


def write_lock(path, change: dict, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**GOOD, **change}).replace('"__inf__"', "1e400")
    path.write_text(text + "\n")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_is_not_a_holder(tmp_path, case):
    lock = tmp_path / ".dagrad.lock"
    write_lock(lock, GARBAGE[case])
    assert read_holder(lock) is None
    assert garbage_reason(lock) is not None
    assert holder_of(lock) is None  # a status look never crashes either


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_fresh_garbage_is_one_line_not_a_crash(tmp_path, case):
    lock = tmp_path / ".dagrad.lock"
    write_lock(lock, GARBAGE[case])
    with pytest.raises(BusyError, match="whose content is not a dagrad lock") as caught:
        FolderLock(lock, "run folder L").acquire()
    assert "\n" not in str(caught.value) and lock.exists()


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_old_garbage_is_taken_over_with_one_warning(tmp_path, case):
    lock = tmp_path / ".dagrad.lock"
    write_lock(lock, GARBAGE[case], age=UNREADABLE_GRACE_SECONDS + 5)
    with pytest.warns(UserWarning, match="took over the lock file .* not a dagrad lock") as caught:
        with FolderLock(lock, "run folder L") as held:
            assert read_holder(lock).token == held.holder.token
    assert len(caught) == 1
    assert not lock.exists()


def test_a_good_lock_of_a_live_process_still_holds(tmp_path):
    lock = tmp_path / ".dagrad.lock"
    write_lock(lock, {})
    assert read_holder(lock).pid == os.getpid() and garbage_reason(lock) is None
    with pytest.raises(BusyError, match=f"in use by PID {os.getpid()}"):
        FolderLock(lock, "run folder L").acquire()


def test_the_command_line_says_one_line(cli, tmp_path):
    write_lock(tmp_path / "L" / ".dagrad.lock", {"pid": "abc"})
    result = cli("--threads", "1", "train", "-c", "demo", "--out", "L")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "not a dagrad lock (pid 'abc')" in line and "Traceback" not in result.err
