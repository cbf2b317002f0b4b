"""The submitit launcher: the sweep's launcher: block, the sbatch script submitit writes (captured by fake
Slurm commands on PATH), relaunches that never resubmit queued or running jobs, runs end to end with
submitit's debug and local executors, and requeue after preemption."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from dagrad.cli import main
from dagrad.utils.errors import ConfigError, LaunchError
from dagrad.launch import LocalLauncher, Progress, choose_launcher, plan, read_sweep, run_sweep
from dagrad.launch.slurm_state import read_submission
from dagrad.records.files import read_records

pytest.importorskip("submitit")

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 3}


def write_sweep(path: Path, grid: dict, launcher: dict | None = None, epochs: int = 2, **base) -> Path:
    data = {"name": "t", "base": [{**BASE, "epochs": epochs, **base}], "grid": grid}
    if launcher is not None:
        data["launcher"] = launcher
    path.write_text(yaml.safe_dump(data))
    return path


def submitted(state: Path) -> list[str]:
    return [p.read_text() for p in sorted(state.glob("submitted-*.sh"), key=lambda p: int(p.stem.split("-")[1]))]


def test_the_sbatch_script_holds_the_launcher_block(tmp_path, fake_slurm, capsys):
    launcher = {"name": "slurm", "partition": "gpu", "timeout_min": 90, "gpus_per_node": 1, "cpus_per_task": 4,
                "mem_gb": 12, "array_parallelism": 2, "jobs_per_task": 2, "setup": ["module load cuda/12.1"],
                "account": "dg-lab"}
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 5}, launcher)
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out"), "--allow-plugins"]) == 0  # setup: shell
    out = capsys.readouterr().out
    assert "submitted 5 job(s) in 3 task(s) to slurm (4242)" in out and "dagrad status" in out
    [script] = submitted(fake_slurm)
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --mem=12GB", "#SBATCH --signal=USR2@120",
                 "#SBATCH --account=dg-lab", "#SBATCH --ntasks-per-node=1", "module load cuda/12.1",
                 "#SBATCH --job-name=dagrad-out"):
        assert line in script.splitlines(), line
    assert "srun" in script and "submitit.core._submit" in script
    _, jobs, out_dir = plan(sweep, tmp_path / "out")
    ids = sorted(read_submission(j.folder).job_id for j in jobs)
    assert ids == ["4242_0", "4242_0", "4242_1", "4242_1", "4242_2"]  # two jobs per task, in grid order
    packs = {read_submission(j.folder).job_id: read_submission(j.folder).jobs_in_task for j in jobs}
    assert [len(packs[k]) for k in sorted(packs)] == [2, 2, 1]
    assert not any((out_dir / j.id / "config.json").read_text().count("partition") for j in jobs)  # not identity


def test_a_relaunch_never_resubmits_queued_or_running_jobs(tmp_path, fake_slurm, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 3}, {"name": "slurm", "array_parallelism": 8})
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out")]) == 0
    _, jobs, _ = plan(sweep, tmp_path / "out")
    task = {read_submission(j.folder).job_id: j for j in jobs}
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|PENDING|None assigned\n"
                                          "4242_1|RUNNING|node7\n4242_2|FAILED|node8\n4242_2.batch|FAILED|node8\n")
    capsys.readouterr()
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    scripts = submitted(fake_slurm)
    assert len(scripts) == 2 and "--array" not in scripts[1]  # only the failed job again, as a single task
    assert read_submission(task["4242_2"].folder).job_id == "4243"
    assert read_submission(task["4242_0"].folder).job_id == "4242_0"
    assert f"{task['4242_0'].id} is pending as Slurm job 4242_0; not submitted again" in out
    assert f"{task['4242_1'].id} is running as Slurm job 4242_1" in out
    assert "-j 4242" in (fake_slurm / "sacct-calls").read_text()  # one sacct call for every id of the array


def test_ids_sacct_does_not_know_are_asked_of_squeue(tmp_path, fake_slurm, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 2}, {"name": "slurm"})
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out")]) == 0
    (fake_slurm / "squeue.txt").write_text("4242_1|PENDING\n")  # no accounting: sacct fails
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert len(submitted(fake_slurm)) == 2 and "--array" not in submitted(fake_slurm)[1]
    assert "--array" in (fake_slurm / "squeue-calls").read_text()
    assert "pending as Slurm job 4242_1" in capsys.readouterr().out


def test_a_refused_submission_is_one_line(tmp_path, fake_slurm, capsys):
    (Path(os.environ["PATH"].split(os.pathsep)[0]) / "sbatch").write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpuu' >&2\nexit 1\n")
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1}, {"name": "slurm", "partition": "gpuu"})
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("dagrad: error: the cluster refused the sweep's jobs (nothing was submitted): sbatch: error: "
                       "invalid partition specified: gpuu")
    with pytest.raises(LaunchError):
        run_sweep(sweep, tmp_path / "out2", launcher=choose_launcher(read_sweep(sweep))[0], stream=None)


def test_the_launcher_block_is_checked_and_chosen(tmp_path):
    bad = write_sweep(tmp_path / "bad.yaml", {"trial_seeds": 1}, {"name": "slurm", "partitoin": "gpu"})
    with pytest.raises(ConfigError, match="launcher.partitoin: not an option of slurm; allowed: cluster, partition"):
        choose_launcher(read_sweep(bad))  # checked where the launcher is chosen
    bad = write_sweep(tmp_path / "bad2.yaml", {"trial_seeds": 1}, {"name": "slurm", "jobs_per_task": 0})
    with pytest.raises(ConfigError, match=r"launcher.jobs_per_task: 0 is out of range; allowed: an integer >= 1"):
        choose_launcher(read_sweep(bad))
    bad = write_sweep(tmp_path / "bad3.yaml", {"trial_seeds": 1}, {"name": "sge"})
    with pytest.raises(ConfigError, match="unknown launcher 'sge'; choose one of: local, processes, slurm"):
        choose_launcher(read_sweep(bad))
    sweep = read_sweep(write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1}, {"name": "slurm", "cpus_per_task": 3}))
    launcher, note = choose_launcher(sweep)
    assert launcher.name == "slurm" and launcher.threads == 3 and not note
    launcher, note = choose_launcher(sweep, "processes", workers=2)
    assert launcher.name == "processes" and "launcher: block is for slurm" in note


def test_without_submitit_the_slurm_launcher_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1})
    assert main(["sweep", "-c", str(sweep), "--launcher", "slurm", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == ("dagrad: error: --launcher slurm needs submitit: "
                                               "pip install 'dagrad[slurm]'")


def test_list_launchers_shows_slurm_and_its_options(capsys):
    assert main(["list", "launchers"]) == 0
    out = capsys.readouterr().out
    assert "slurm: a Slurm job array through submitit" in out
    assert "    array_parallelism = 256 (an integer >= 1)" in out and "    jobs_per_task = 1" in out


# ---------------------------------------------------------------- end to end with submitit's executors
def computed(lines: list[dict]) -> list[dict]:
    """What a run computed, without energy and times (they differ between two runs of the same thing)."""
    keep = ("type", "epoch", "step", "updates", "kind", "fallback", "metrics", "averaged_metrics", "update_stats",
            "sampler_stats", "averager", "run_id", "stopped_early", "reported")
    return [{k: line[k] for k in keep if k in line} for line in lines]


def test_debug_executor_runs_the_sweep_end_to_end(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1}, {"name": "slurm", "cluster": "debug"})
    outcome = run_sweep(sweep, tmp_path / "out", launcher=choose_launcher(read_sweep(sweep), threads=1)[0],
                        stream=None)
    assert [r.status for r in outcome.results] == ["done"] and not outcome.failed
    reference = run_sweep(write_sweep(tmp_path / "r.yaml", {"trial_seeds": 1}), tmp_path / "ref",
                          launcher=LocalLauncher(threads=1), stream=None)
    for job, ref in zip(outcome.jobs, reference.jobs):
        assert job.id == ref.id  # the launcher block is not part of a job's identity
        assert computed(read_records(job.folder / "records.jsonl")) == computed(read_records(ref.folder /
                                                                                             "records.jsonl"))
        assert "submitit task" in job.log.read_text()
    again = run_sweep(sweep, tmp_path / "out", launcher=choose_launcher(read_sweep(sweep), threads=1)[0], stream=None)
    assert len(again.skipped) == 1 and not again.results


def _task_pid(lock: Path) -> int:
    """The submitit task running a job: the parent of the worker that holds the job's lock."""
    worker = json.loads(lock.read_text())["pid"]
    with open(f"/proc/{worker}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
def test_a_preempted_local_task_requeues_and_resumes_to_the_same_records(tmp_path):
    grid = {"trial_seeds": [0]}
    sweep = write_sweep(tmp_path / "s.yaml", grid, {"name": "slurm", "cluster": "local", "wait": True, "poll_s": 0.2,
                                                    "gpus_per_node": 0}, epochs=6, steps_per_epoch=40)
    launcher = choose_launcher(read_sweep(sweep), threads=1)[0]
    _, [job], out = plan(sweep, tmp_path / "out")
    from dagrad.launch import _prepare_all

    _prepare_all(out, [job])
    [(_, handle)] = launcher.submit([job])
    deadline = time.time() + 120
    while not (job.folder / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    lock = out / ".locks" / f"{job.id}.lock"
    os.kill(_task_pid(lock), signal.SIGUSR2)  # what Slurm sends before preempting or at the time limit
    handle.wait()
    log = job.log.read_text()
    assert log.count("submitit task") == 2, log  # the task ran again after requeueing itself
    assert "stopped by SIGTERM" in log or "stopped by SIGUSR2" in log
    epochs = [line["epoch"] for line in read_records(job.folder / "records.jsonl") if line["type"] == "epoch"]
    assert epochs == list(range(6)) and (job.folder / "done").is_file()
    reference = run_sweep(write_sweep(tmp_path / "r.yaml", grid, epochs=6, steps_per_epoch=40), tmp_path / "ref",
                          launcher=LocalLauncher(threads=1), stream=None)
    assert computed(read_records(job.folder / "records.jsonl")) == \
        computed(read_records(reference.jobs[0].folder / "records.jsonl"))
    assert not lock.exists()


def test_progress_say_survives_a_closed_stream():
    progress = Progress(1, 0, None)
    progress.say("nothing to print to")  # no stream: silent


@pytest.mark.slow
def test_a_task_with_two_slurm_tasks_trains_each_job_on_two_ranks(tmp_path, monkeypatch):
    """tasks_per_node: 2 runs every job of the task as one two-rank job (the multi-GPU path, here on CPU)."""
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1}, {
        "name": "slurm", "cluster": "local", "wait": True, "poll_s": 0.2, "tasks_per_node": 2, "gpus_per_node": 0})
    monkeypatch.setenv("DAGRAD_DIST_TIMEOUT_S", "60")
    outcome = run_sweep(sweep, tmp_path / "out", launcher=choose_launcher(read_sweep(sweep), threads=1)[0],
                        stream=None)
    assert [r.status for r in outcome.results] == ["done"], outcome.jobs[0].log.read_text()
    log = outcome.jobs[0].log.read_text()
    assert "rank 0/2" in log and "rank 1/2" in log and "rank 0 of 2" in log
    header = read_records(outcome.jobs[0].folder / "records.jsonl")[0]
    assert header["distributed"]["world_size"] == 2
    reference = run_sweep(write_sweep(tmp_path / "r.yaml", {"trial_seeds": 1}), tmp_path / "ref",
                          launcher=LocalLauncher(threads=1), stream=None)
    two = [r for r in read_records(outcome.jobs[0].folder / "records.jsonl") if r["type"] == "epoch"]
    one = [r for r in read_records(reference.jobs[0].folder / "records.jsonl") if r["type"] == "epoch"]
    for a, b in zip(two, one):
        assert all(abs(a["metrics"][k] - b["metrics"][k]) < 1e-4 for k in a["metrics"])
