"""One run per folder: a lock held for the run's whole life (with stale-lock detection), temp files of a
killed checkpoint write removed, and no dead end after a run that failed before its first checkpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dagrad.utils.errors import BusyError
from dagrad.run.lock import FolderLock, Holder, read_holder
from dagrad.run.folder import LOCK_NAME
from helpers.faultinject import TINY

SLOW_TINY = [*TINY, "epochs=15", "steps_per_epoch=10"]


def _dagrad(*args, cwd, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dagrad", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant_lock(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    holder = Holder(socket.gethostname(), os.getpid(), None, time.time(), "planted", None, "test")
    data = {**holder.__dict__, **fields}
    (folder / LOCK_NAME).write_text(json.dumps(data))
    return folder / LOCK_NAME


@pytest.mark.slow
def test_two_concurrent_trains_on_one_folder(tmp_path):
    """The second run gets one line naming the folder and the PID holding it; the first finishes intact.
    The first is paused (SIGSTOP) while the others try, so the test does not depend on timing."""
    first = _dagrad("train", "--quiet", "--out", "run", *SLOW_TINY, cwd=tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / "run" / "records.jsonl").exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)
    try:
        second = _dagrad("train", "--quiet", "--out", "run", *SLOW_TINY, cwd=tmp_path)
        _, err = second.communicate(timeout=120)
        resumer = _dagrad("train", "--quiet", "--resume", "--out", "run", *SLOW_TINY, cwd=tmp_path)
        _, resumer_err = resumer.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"dagrad: error: run folder run is in use by PID {first.pid} on {socket.gethostname()} "
                          f"(since "), err
    assert err.strip().endswith("; wait for it to finish or stop it (it is taken over automatically once that "
                                "process is gone)"), err
    assert resumer.returncode == 2 and f"in use by PID {first.pid}" in resumer_err
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["header"] + ["epoch"] * 15 + ["summary"]
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_live_lock_is_one_line_and_nothing_is_written(cli, tmp_path):
    lock = _plant_lock(tmp_path / "run", pid=os.getppid(), pid_start=None, slurm_job_id="4242")
    cli("train", "--quiet", "--out", "run", *TINY).assert_one_line_error(
        f"run folder run is in use by PID {os.getppid()} on {socket.gethostname()}", "Slurm job 4242")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]
    assert json.loads(lock.read_text())["token"] == "planted"


def test_a_lock_whose_process_is_gone_is_taken_over(cli, tmp_path):
    _plant_lock(tmp_path / "run", pid=_dead_pid())
    result = cli("train", "--quiet", "--out", "run", *TINY, "epochs=1")
    assert result.code == 0, result.err
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    """Same host, the PID alive but started at another time: another process now has that PID."""
    lock = _plant_lock(tmp_path, pid=os.getpid(), pid_start="1")
    with FolderLock(lock, "folder"):
        assert read_holder(lock).token != "planted"


def test_other_hosts_locks_go_stale_after_the_configured_age(tmp_path, monkeypatch):
    lock = _plant_lock(tmp_path, host="elsewhere.example", pid=1)
    with pytest.raises(BusyError, match=r"folder is in use by PID 1 on elsewhere.example .*no heartbeat for 600 s "
                                        r"\(DAGRAD_LOCK_STALE_SECONDS\)"):
        FolderLock(lock, "folder").acquire()
    old = time.time() - 120
    os.utime(lock, (old, old))
    monkeypatch.setenv("DAGRAD_LOCK_STALE_SECONDS", "60")
    with FolderLock(lock, "folder") as taken:
        assert read_holder(lock).token == taken.holder.token
    assert not lock.exists()


def test_the_lock_records_who_holds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    with FolderLock(tmp_path / "sub" / "x.lock", "folder"):
        holder = read_holder(tmp_path / "sub" / "x.lock")
        assert (holder.host, holder.pid, holder.slurm_job_id) == (socket.gethostname(), os.getpid(), "777")
        assert abs(holder.started - time.time()) < 60 and holder.pid_start
    assert not (tmp_path / "sub").exists()  # the folder made for the lock goes with it


def test_stale_checkpoint_temp_files_are_removed_on_start_and_resume(cli, tmp_path):
    assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    temp = tmp_path / "run" / ".checkpoint.pt.abc123.tmp"
    temp.write_bytes(b"x" * 1000)
    other = tmp_path / "run" / ".records.jsonl.def456.tmp"
    other.write_bytes(b"y")
    assert cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=1").code == 0
    assert not temp.exists() and not other.exists()


def test_rerun_and_restart_messages_name_the_way_out(cli, tmp_path):
    assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").assert_one_line_error(
        "run already holds a run; pass --resume to continue it, --restart to move it aside and start afresh, "
        "or choose another --out")
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"garbage")
    cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=1").assert_ends_with_error(
        "run/checkpoint.pt is not a dagrad checkpoint (it is truncated or corrupted",
        "dagrad train --restart --out run")
    restarted = cli("train", "--quiet", "--restart", "--out", "run", *TINY, "epochs=1")
    assert restarted.code == 0, restarted.err
    moved = list(tmp_path.glob("run.broken-*"))
    assert len(moved) == 1 and (moved[0] / "checkpoint.pt").read_bytes() == b"garbage"
    assert "--restart: the previous attempt in run is kept in" in restarted.err
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_size > 1000


def test_resume_after_a_failure_before_the_first_checkpoint_starts_afresh(cli, tmp_path):
    """A header-only records.jsonl (a kill or a corrupt image during epoch 0) no longer traps the run."""
    assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    header = (tmp_path / "run" / "records.jsonl").read_text().splitlines()[0]
    (tmp_path / "run" / "checkpoint.pt").unlink()
    (tmp_path / "run" / "records.jsonl").write_text(header + "\n")
    result = cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=1")
    assert result.code == 0, result.err
    assert "stopped before its first checkpoint, so there is nothing to resume" in result.err
    assert len(list(tmp_path.glob("run.broken-*/records.jsonl"))) == 1


def test_resume_of_an_empty_folder_says_so(cli, tmp_path):
    (tmp_path / "run").mkdir()
    cli("train", "--resume", "--out", "run", *TINY).assert_one_line_error(
        "cannot resume: run holds no run (no records.jsonl or checkpoint.pt); start it without --resume")
    assert list((tmp_path / "run").iterdir()) == []


def test_files_follow_the_umask(cli, tmp_path):
    old = os.umask(0o027)
    try:
        assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    finally:
        os.umask(old)
    for name in ("records.jsonl", "checkpoint.pt"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o640, name
    os.umask(0o002)
    try:
        from dagrad.utils.atomic import write_text_atomic

        write_text_atomic(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o664


def test_resume_and_restart_find_the_default_run_folder(cli, tmp_path):
    """Without --out a run goes to runs/<name>-<run id>, the same for the same experiment: the way out that
    the rerun message names works without --out too."""
    assert cli("train", "--quiet", *TINY, "epochs=1").code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    cli("train", "--quiet", *TINY, "epochs=1").assert_one_line_error(f"runs/{folder.name} already holds a run")
    assert cli("train", "--quiet", "--resume", *TINY, "epochs=1").code == 0
    assert cli("train", "--quiet", "--restart", *TINY, "epochs=1").code == 0
    assert len(list((tmp_path / "runs").glob(f"{folder.name}.broken-*"))) == 1


def test_a_lock_left_by_an_earlier_run_of_the_same_slurm_job_is_taken_over(tmp_path, monkeypatch):
    """A Slurm job requeued after its node failed finds its own old lock: that run has ended."""
    lock = _plant_lock(tmp_path, host="node-that-died", pid=1, slurm_job_id="4242_3", slurm_restart=0)
    monkeypatch.setenv("SLURM_JOB_ID", "4242_3")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    with pytest.raises(BusyError, match="node-that-died"):  # the same run (no requeue since): still in use
        FolderLock(lock, "folder").acquire()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with FolderLock(lock, "folder") as taken:
        assert read_holder(lock).slurm_restart == 1 and read_holder(lock).token == taken.holder.token
    monkeypatch.setenv("SLURM_JOB_ID", "9999")  # another job's lock on another host is left alone
    lock = _plant_lock(tmp_path, host="node-that-died", pid=1, slurm_job_id="4242_3", slurm_restart=0)
    with pytest.raises(BusyError):
        FolderLock(lock, "folder").acquire()
