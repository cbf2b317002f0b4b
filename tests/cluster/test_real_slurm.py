"""Sweeps against a real single-node Slurm (tests/cluster/slurm.sh): a job array with throttling and several
jobs per task, requeue after preemption, the time limit, scancel and relaunch, relaunches that submit
nothing twice, a failing job in `dagrad status`, and two ranks through srun. Run with `make test-slurm`."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from helpers.slurmcluster import computed, release_requeued, sacct, slurm, wait_until, write_sweep
from dagrad.launch import LocalLauncher, choose_launcher, plan, read_sweep, run_sweep
from dagrad.launch.slurm_state import ALIVE_STATES, read_submission
from dagrad.launch.status import read_status
from dagrad.records.files import read_records

pytestmark = pytest.mark.slurm


def launch(sweep: Path, out: Path, **kwargs):
    return run_sweep(sweep, out, launcher=choose_launcher(read_sweep(sweep), threads=1)[0], stream=None, **kwargs)


def epochs_of(folder: Path) -> list[int]:
    return [line["epoch"] for line in read_records(folder / "records.jsonl") if line["type"] == "epoch"]


def reference(tmp_path: Path, grid: dict, **base) -> list[dict]:
    """The records of the same single job run here, uninterrupted."""
    ref = run_sweep(write_sweep(tmp_path / "ref.yaml", grid, **base), tmp_path / "ref",
                    launcher=LocalLauncher(threads=1), stream=None)
    return computed(read_records(ref.jobs[0].folder / "records.jsonl"))


def dagrad_status(out: Path) -> str:
    return subprocess.run([sys.executable, "-m", "dagrad", "status", str(out)], capture_output=True, text=True,
                          check=True).stdout


def test_a_sweep_runs_as_a_throttled_job_array(cluster, tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 6},
                        {"array_parallelism": 2, "jobs_per_task": 2, "wait": True})
    outcome = launch(sweep, tmp_path / "out")
    assert len(outcome.jobs) == 6 and [r.status for r in outcome.results] == ["done"] * 6, \
        [r.job.log.read_text()[-400:] for r in outcome.results if r.status != "done"]
    ids = {read_submission(job.folder).job_id for job in outcome.jobs}
    array = {i.split("_")[0] for i in ids}
    assert len(ids) == 3 and len(array) == 1  # one array of three tasks, two jobs each
    array = array.pop()  # the tasks' results are written just before Slurm marks them ended
    wait_until("the array's tasks to end", lambda: all(s not in ("RUNNING", "COMPLETING", "PENDING")
                                                        for s in sacct(array).values()), seconds=60)
    assert sorted(sacct(array).values()) == ["COMPLETED"] * 3
    for job in outcome.jobs:
        assert epochs_of(job.folder) == [0, 1] and (job.folder / "done").is_file()
        assert read_records(job.folder / "records.jsonl")[-1]["type"] == "summary"
    # never more than two tasks at once (array_parallelism)
    times = [line.split("|") for line in slurm("sacct", "-n", "-X", "-P", "-j", ",".join(sorted(ids)),
                                                 "-o", "Start,End").splitlines()]
    spans = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in times]
    assert all(sum(s <= start < e for s, e in spans) <= 2 for start, _ in spans)
    assert "done 6" in dagrad_status(tmp_path / "out")


def test_a_requeued_task_resumes_to_the_records_of_an_uninterrupted_run(cluster, tmp_path):
    grid = {"trial_seeds": [0]}
    sweep = write_sweep(tmp_path / "s.yaml", grid, epochs=6, steps_per_epoch=40)
    [job] = launch(sweep, tmp_path / "out").jobs
    task = read_submission(job.folder).job_id
    wait_until("the first checkpoint", lambda: (job.folder / "checkpoint.pt").exists())
    slurm("scontrol", "requeue", task)  # what preemption with requeue does
    wait_until("the requeued task to start again", lambda: release_requeued(task))
    wait_until("the job to finish", lambda: (job.folder / "done").is_file(), seconds=300)
    log = job.log.read_text()
    assert log.count("submitit task") == 2, log
    assert epochs_of(job.folder) == list(range(6))
    assert computed(read_records(job.folder / "records.jsonl")) == reference(tmp_path, grid, epochs=6,
                                                                             steps_per_epoch=40)


def test_a_task_at_its_time_limit_checkpoints_requeues_and_completes(cluster, tmp_path):
    """timeout_min: 1 and more than a minute of work: Slurm signals the task signal_delay_s before its limit,
    the task stops its worker after the epoch checkpoint and requeues itself; a later attempt finishes.
    slurmctld looks at time limits every 30 s and signals up to that much early: a 30 s delay on a one-minute
    limit can signal the task before Python has started (USR2 then kills it), a 5 s one in the same look
    as the kill; 20 s lands between the two."""
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]}, {"timeout_min": 1, "signal_delay_s": 20},
                        epochs=60, steps_per_epoch=40)
    [job] = launch(sweep, tmp_path / "out").jobs
    task = read_submission(job.folder).job_id

    def finished_or_released():
        if (job.folder / "done").is_file():
            return True
        release_requeued(task)
        return False

    wait_until("the job to finish over its requeues", finished_or_released, seconds=480, every=2)
    log = job.log.read_text()
    assert log.count("submitit task") >= 2 and "stopped by SIG" in log, log
    assert epochs_of(job.folder) == list(range(60))

    def ended():  # a signal in the last seconds requeues a task whose jobs are done: that attempt skips them
        release_requeued(task)
        return sacct(task).get(task, "PENDING") not in ALIVE_STATES

    wait_until("Slurm to record the task's end", ended, seconds=240, every=2)
    # Slurm's warning may also land after the task has returned its result (one-minute limit, 30 s looks),
    # which Slurm then records as FAILED: the result file shows the task had completed
    results = list((tmp_path / "out" / ".submitit").glob(f"{task}/{task}_*_result.pkl"))
    assert sacct(task)[task] == "COMPLETED" or results, sacct(task)


def test_scancel_shows_cancelled_and_a_relaunch_resumes(cluster, tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]}, epochs=5, steps_per_epoch=40)
    out = tmp_path / "out"
    [job] = launch(sweep, out).jobs
    task = read_submission(job.folder).job_id
    wait_until("the first checkpoint", lambda: (job.folder / "checkpoint.pt").exists())
    slurm("scancel", task)
    wait_until("sacct to say CANCELLED", lambda: sacct(task).get(task) == "CANCELLED")
    wait_until("the worker to let go of the job", lambda: read_status(out).jobs[0].state == "cancelled")
    text = dagrad_status(out)
    assert "cancelled 1" in text and "Slurm CANCELLED" in text, text
    done_before = epochs_of(job.folder)
    again = launch(write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]}, {"wait": True}, epochs=5,
                               steps_per_epoch=40), out)
    assert [r.status for r in again.results] == ["done"], job.log.read_text()[-600:]
    assert read_submission(job.folder).job_id != task
    assert epochs_of(job.folder) == list(range(5)) and done_before
    assert "resum" in job.log.read_text().split("submitit task")[-1].lower()


def test_a_relaunch_submits_nothing_that_is_pending_or_running(cluster, tmp_path, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 3}, {"array_parallelism": 1}, epochs=3,
                        steps_per_epoch=40)
    out = tmp_path / "out"
    first = launch(sweep, out)
    before = {job.id: read_submission(job.folder).job_id for job in first.jobs}
    array = next(iter(before.values())).split("_")[0]
    wait_until("one task running", lambda: "RUNNING" in slurm("squeue", "--noheader", "--array", "-j", array,
                                                                 "--format=%T"))
    queued = slurm("squeue", "--noheader", "--array", "-j", array, "--format=%T").split()
    assert "PENDING" in queued  # the throttle keeps the others waiting
    again = run_sweep(sweep, out, launcher=choose_launcher(read_sweep(sweep), threads=1)[0])
    said = capsys.readouterr().out
    assert [r.status for r in again.results] == ["queued"] * 3
    assert said.count("not submitted again") == 3 and "submitted 0" not in said and "submitted " not in \
        said.replace("not submitted again", "")
    assert {job.id: read_submission(job.folder).job_id for job in again.jobs} == before
    assert len(slurm("squeue", "--noheader", "--array", "--format=%i").split()) == len(queued)


def test_a_failing_job_shows_its_slurm_state_and_last_log_line(cluster, tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]})
    _, [job], out = plan(sweep, tmp_path / "out")
    from dagrad.launch import _prepare_all

    _prepare_all(out, [job])
    (job.folder / "config.json").write_text("{not json")  # the worker cannot read what to run
    launcher = choose_launcher(read_sweep(sweep), threads=1)[0]
    [(_, handle)] = launcher.submit([job])
    task = str(handle.job_id)
    wait_until("the task to end", lambda: sacct(task).get(task) in ("FAILED", "COMPLETED"))
    assert sacct(task)[task] == "FAILED"
    [status] = read_status(out).jobs
    assert status.state == "failed" and status.cluster_state == "FAILED"
    text = dagrad_status(out)
    assert "Slurm FAILED" in text and "not a readable job description" in text, text


def test_two_tasks_per_node_train_one_job_on_two_gloo_ranks(cluster, tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]}, {"tasks_per_node": 2, "wait": True})
    outcome = launch(sweep, tmp_path / "out")
    [job] = outcome.jobs
    assert [r.status for r in outcome.results] == ["done"], job.log.read_text()[-600:]
    log = job.log.read_text()
    assert "rank 0/2" in log and "rank 1/2" in log
    header = read_records(job.folder / "records.jsonl")[0]
    assert header["distributed"]["world_size"] == 2 and header["distributed"]["backend"] == "gloo"
    assert epochs_of(job.folder) == [0, 1]
