"""The ETA of sweeps, `dagrad status` and the demo: per-setting mean durations of finished jobs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dagrad.launch.eta import eta_seconds, format_eta
from dagrad.launch.runner import JobResult, Progress


def test_each_setting_takes_its_own_mean_and_unseen_ones_the_overall_mean():
    finished = [("full", 10.0), ("full", 20.0), ("tensor", 4.0)]
    # full: 15 each, tensor: 4, skip (none finished): the mean of all three, 34/3
    assert eta_seconds(finished, ["full", "tensor", "skip"]) == pytest.approx(15 + 4 + 34 / 3)
    assert eta_seconds(finished, ["full", "full"], parallel=2) == pytest.approx(15.0)
    # a running job counts only what it still has to go, never less than nothing
    assert eta_seconds(finished, [], running=[("full", 9.0), ("tensor", 30.0)]) == pytest.approx(6.0)
    assert eta_seconds([], ["full"]) is None
    assert eta_seconds(finished, []) == 0.0


def test_eta_words():
    assert (format_eta(None), format_eta(40.4), format_eta(600), format_eta(3 * 3600)) == \
        ("", "eta 40 s", "eta 10 min", "eta 3.0 h")


def _job(job_id: str, setting: str):
    return SimpleNamespace(id=job_id, point=SimpleNamespace(setting=setting), name=job_id, log=Path("log"))


def test_progress_lines_carry_the_eta_once_a_job_has_finished(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("dagrad.launch.runner.time.time", lambda: clock[0])
    jobs = [_job("a", "full"), _job("b", "skip"), _job("c", "full")]
    stream = io.StringIO()
    progress = Progress(3, 0, stream, jobs)
    progress.start(jobs[0])
    assert "eta" not in stream.getvalue()  # nothing finished yet: no guess
    clock[0] += 30
    progress.finish(JobResult(jobs[0], "done", 0, 30.0))
    assert stream.getvalue().splitlines()[-1].endswith("done 1/3 | running 0 | failed 0 | left 2 | eta 60 s")
    progress.start(jobs[1])
    clock[0] += 10
    progress.finish(JobResult(jobs[1], "done", 0, 10.0))
    assert stream.getvalue().splitlines()[-1].endswith("left 1 | eta 30 s")  # c is a full run: 30 s
    progress.start(jobs[2])
    clock[0] += 30
    progress.finish(JobResult(jobs[2], "done", 0, 30.0))
    assert stream.getvalue().splitlines()[-1].endswith("left 0")


def test_status_estimates_from_done_jobs_durations(tmp_path, capsys):
    from dagrad.cli import main
    from dagrad.launch.status import read_status

    out = tmp_path / "sweep"
    listed = [{"id": f"j{i}", "job": f"job {i}", "setting": s} for i, s in enumerate(["full", "full", "skip", "skip"])]
    out.mkdir()
    (out / "jobs.json").write_text(json.dumps(listed))
    for i, seconds in ((0, 100.0), (2, 20.0)):
        (out / f"j{i}").mkdir()
        (out / f"j{i}" / "done").write_text(json.dumps({"run_id": "x", "finished": "", "seconds": seconds}))
    for i in (1, 3):  # submitted to a cluster and waiting there
        (out / f"j{i}").mkdir()
    status = read_status(out, ask_cluster=False)
    assert status.eta() is None  # nothing runs or waits: no estimate
    for job in status.jobs[1::2]:
        job.state = "queued"
    assert status.eta() == pytest.approx(120.0)
    from dagrad.commands.status import render

    assert render(status).splitlines()[0].endswith("4 jobs | done 2, queued 2 | eta 2 min")
