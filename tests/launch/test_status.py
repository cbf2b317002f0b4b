"""`dagrad status`: a sweep's (or a run's) state from its folders alone: done, running (epoch, host, PID,
Slurm id), queued, failed (log's last line), stopped, not started, and the energy so far."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import yaml

from dagrad.cli import main
from dagrad.run.lock import FolderLock, Holder
from dagrad.launch import LocalLauncher, _prepare_all, plan
from dagrad.launch.jobs import lock_path
from dagrad.launch.slurm_state import Submission, write_submission
from dagrad.launch.status import read_status
from dagrad.records.files import read_records

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 2, "epochs": 3}


def sweep_with_every_state(tmp_path: Path):
    """Six jobs: one trained to the end; the others made to look running, failed, stopped, queued, new."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "t", "base": [BASE], "grid": {"trial_seeds": 6}}))
    _, jobs, out = plan(sweep, tmp_path / "out")
    _prepare_all(out, jobs)
    done, running, failed, stopped, queued, new = jobs
    LocalLauncher(threads=1).launch([done], _silent())
    lines = read_records(done.folder / "records.jsonl")
    partial = "".join(json.dumps(line) + "\n" for line in lines[:3])  # header and two epochs
    for job in (running, stopped, failed):
        (job.folder / "records.jsonl").write_text(partial)
    failed.log.write_text("--- 2026-01-01 10:00:00 job x, pid 1, 1 threads\nepoch 1/3 ...\n"
                          "dagrad: error: unreadable example env1/img3.png: broken file\n")
    stopped.log.write_text("--- 2026-01-01 10:00:00 job x, pid 1, 1 threads\nepoch 2/3 train: ...\n")
    write_submission(queued.folder, Submission("4242_4", "slurm", str(out / ".submitit")))
    return out, jobs


def _silent():
    from dagrad.launch import Progress

    return Progress(1, 0, None)


def test_every_state_is_read_from_the_folders(tmp_path, fake_slurm, monkeypatch, capsys):
    out, (done, running, failed, stopped, queued, new) = sweep_with_every_state(tmp_path)
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_4|PENDING|None assigned\n")
    monkeypatch.setenv("SLURM_JOB_ID", "4242_1")
    with FolderLock(lock_path(running.folder), "job"):
        status = read_status(out)
        assert [j.state for j in status.jobs] == ["done", "running", "failed", "stopped", "queued", "not started"]
        run = status.jobs[1]
        assert (run.epoch, run.epochs, run.holder.host, run.holder.pid) == (2, 3, socket.gethostname(), os.getpid())
        assert run.holder.slurm_job_id == "4242_1" and run.heartbeat_age < 60
        assert status.jobs[2].last_log_line == "dagrad: error: unreadable example env1/img3.png: broken file"
        assert status.jobs[4].cluster_state == "PENDING"
        records = read_records(done.folder / "records.jsonl")
        assert status.jobs[0].joules == records[-1]["run_energy"]["joules"]
        epochs = records[1:3]
        partial = sum(e["energy"][k]["joules"] for e in epochs for k in ("setup", "train", "eval", "other")
                      if k in e["energy"])  # setup: the first epoch's one-off warm-up
        assert abs(status.jobs[1].joules - partial) < 1e-9
        assert abs(status.joules - (records[-1]["run_energy"]["joules"] + 3 * partial)) < 1e-6

        assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    head, _, eta = lines[0].partition(" | eta ")  # from the done job's duration (tests/launch/test_eta.py)
    assert head == (f"sweep {out}: 6 jobs | done 1, running 1, queued 1, failed 1, stopped 1, not started 1")
    assert eta.split()[1] in ("s", "min")
    assert lines[1].startswith("run energy so far (whole jobs): ") and "over 4 job(s) (estimated:cpu-time)" in lines[1]
    assert f"2 of 3 epochs done on {socket.gethostname()} (PID {os.getpid()}, Slurm 4242_1)" in text
    assert f"{queued.id}  {queued.name}  Slurm job 4242_4 pending" in text
    assert "log: dagrad: error: unreadable example env1/img3.png: broken file" in text
    assert "log: epoch 2/3 train: ..." in text
    assert done.id not in text and new.id not in text  # counted, not listed, without --all
    assert main(["status", str(out), "--all", "--offline"]) == 0
    text = capsys.readouterr().out
    assert f"done:\n  {done.id}" in text and f"not started:\n  {new.id}" in text
    assert "running 0" not in text and "stopped 2" in text  # the lock is released: that job stopped


def test_a_submission_the_cluster_no_longer_holds_is_not_queued(tmp_path, fake_slurm):
    out, jobs = sweep_with_every_state(tmp_path)
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_4|CANCELLED by 1000|None assigned\n")
    job = read_status(out).jobs[4]  # cancelled before it started: a relaunch submits it again
    assert (job.state, job.cluster_state) == ("cancelled", "CANCELLED")
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n")  # accounting has forgotten it
    assert read_status(out).jobs[4].state == "not started"


def test_a_run_folder(tmp_path, capsys):
    out, (done, *_) = sweep_with_every_state(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(done.folder, run)
    (run / "done").unlink()
    assert main(["status", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"run {run}: done, 3 of 3 epochs done, ")
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in read_records(run / "records.jsonl")[:2]))
    holder = Holder("node12", 4321, None, time.time(), "t", "77", "dagrad train")
    (run / ".dagrad.lock").write_text(json.dumps(holder.__dict__))
    assert main(["status", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"run {run}: running, 1 of 3 epochs done on node12 (PID 4321, Slurm 77)")


def test_not_a_sweep_or_run_folder_is_one_line(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"dagrad: error: {tmp_path} is neither a sweep folder (no jobs.json) nor a run folder (no "
                   f"records.jsonl); give the --out of `dagrad sweep` or `dagrad train`")


def test_watch_refreshes_until_nothing_runs(tmp_path, capsys):
    out, (done, running, failed, stopped, queued, new) = sweep_with_every_state(tmp_path)
    (queued.folder / "slurm.json").unlink()  # nothing waits on a cluster: the watch ends with the running job
    lock = FolderLock(lock_path(running.folder), "job").acquire()

    def finish():
        time.sleep(0.5)
        (running.folder / "done").write_text("{}\n")
        lock.release()

    thread = threading.Thread(target=finish)
    thread.start()
    assert main(["status", str(out), "--watch", "0.2", "--offline"]) == 0
    thread.join()
    views = capsys.readouterr().out.split("=== ")[1:]
    assert len(views) >= 2 and "running 1" in views[0] and "running 0" not in views[0]
    assert "done 2" in views[-1] and "running" not in views[-1]
