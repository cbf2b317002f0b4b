"""`dagrad status --watch` follows a sweep until its launcher has ended: between two jobs no job holds a
lock, yet the launcher's mark keeps the watch going, and a job handed to a worker shows as `starting`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from dagrad.launch.launcher_mark import MARKS_DIR, LauncherMark, live_launchers
from dagrad.launch.status import read_status


def sweep_folder(tmp_path):
    out = tmp_path / "ref"
    out.mkdir()
    (out / "jobs.json").write_text(json.dumps([{"id": "j1", "job": "first"}, {"id": "j2", "job": "second"}]))
    for job in ("j1", "j2"):
        (out / job).mkdir()
    return out


def test_a_live_launcher_keeps_the_sweep_active_and_its_jobs_starting(tmp_path):
    out = sweep_folder(tmp_path)
    assert not read_status(out).active  # nothing running, no launcher: the watch may end
    with LauncherMark(out) as mark:
        status = read_status(out)
        assert status.active and [j.state for j in status.jobs] == ["not started", "not started"]
        mark.started("j1")
        status = read_status(out)
        assert [j.state for j in status.jobs] == ["starting", "not started"]
        mark.ended("j1")
        assert read_status(out).active  # the gap between two jobs
    assert not read_status(out).active and not live_launchers(out)
    assert not (out / MARKS_DIR).exists()  # the mark goes with the launch


@pytest.mark.slow
def test_a_killed_launchers_mark_is_stale(tmp_path):
    out = sweep_folder(tmp_path)
    code = ("import sys, os; from dagrad.launch.launcher_mark import LauncherMark; m = LauncherMark(sys.argv[1]); "
            "m.__enter__(); m.started('j2'); os._exit(0)")  # ends without removing its mark, like kill -9
    subprocess.run([sys.executable, "-c", code, str(out)], check=True)
    assert list((out / MARKS_DIR).glob("*.lock"))
    status = read_status(out)
    assert not status.active and [j.state for j in status.jobs] == ["not started", "not started"]


@pytest.mark.slow
def test_watch_waits_until_the_launcher_has_ended(cli, tmp_path):
    out = sweep_folder(tmp_path)
    code = ("import sys, time; from dagrad.launch.launcher_mark import LauncherMark\n"
            "with LauncherMark(sys.argv[1]) as m:\n    m.started('j1'); time.sleep(2.5)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)])
    try:
        deadline = time.time() + 30
        while not list((out / MARKS_DIR).glob("*.jobs.json")) and time.time() < deadline:
            time.sleep(0.05)
        start = time.time()
        result = cli("status", str(out), "--watch", "0.2")
        watched = time.time() - start
    finally:
        proc.wait(timeout=30)
    assert result.code == 0
    assert watched > 1.5 and not live_launchers(out)  # it returned only once the launcher had ended
    views = result.out.split("=== ")
    assert "starting 1" in views[1] and "launcher PID" in views[1] and "a worker of the launcher" in views[1]
    assert "starting" not in views[-1] and "launcher PID" not in views[-1]
