"""Sweeps: validation up front, a second launcher, --threads, a closed stdout, clean job logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from dagrad.launch import plan, run_sweep
from dagrad.launch.jobs import lock_path
from dagrad.launch.runner import LocalLauncher, ProcessLauncher
from dagrad.run.lock import FolderLock
from helpers.faultinject import snapshot

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 2, "epochs": 1}


def _sweep(tmp_path, grid, base=None, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"name": "t", "base": [{**BASE, **(base or {})}], "grid": grid}))
    return path


@pytest.mark.parametrize("grid,base,message", [
    ({"test_envs": [[5], [7]]}, None, "job rotated_digits/erm/none test_envs=7 hparams_seed=0 trial_seed=0: "
                                       "data.test_envs: 7 is not an environment of rotated_digits"),
    ({"axes": {"data.options.angles": [[0, 45]]}}, None, "data.test_envs: 5 is not an environment of "
                                                          "rotated_digits; environments: 0=rot0, 1=rot45"),
    ({"trial_seeds": 2}, {"algorithm": {"hparams": {"lr": -1}}}, "algorithm.hparams.lr: -1.0 is out of range"),
], ids=["test-envs", "envs-from-options", "negative-lr"])
def test_every_job_is_validated_before_anything_is_written(cli, tmp_path, grid, base, message):
    _sweep(tmp_path, grid, base)
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error(message)
    cli("sweep", "-c", "s.yaml", "--out", "out").assert_one_line_error(message)
    assert snapshot(tmp_path) == before


def test_folder_dataset_environments_are_checked_up_front(cli, tmp_path, image_tree):
    root = image_tree({"a": {"cat": 1}, "b": {"cat": 1}})
    _sweep(tmp_path, {"test_envs": [[2]]}, {"data": {**BASE["data"], "name": "folder", "root": str(root)}})
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error(
        "data.test_envs: 2 is not an environment of folder; environments: 0=a, 1=b")


def test_a_second_launcher_reports_jobs_running_elsewhere(tmp_path, capsys):
    sweep = _sweep(tmp_path, {"trial_seeds": 2})
    _, jobs, out = plan(sweep, tmp_path / "out")
    with FolderLock(lock_path(jobs[0].folder), f"job {jobs[0].id}"):  # another launch is running job 0
        outcome = run_sweep(sweep, out, launcher=LocalLauncher(threads=1))
        printed = capsys.readouterr().out
        assert [j.state() for j in jobs] == ["running", "done"]
    assert not outcome.failed and [r.job.id for r in outcome.elsewhere] == [jobs[0].id]
    assert "did not finish" not in printed and "busy" not in printed
    assert f"1 job(s) are running in another launch (left alone; relaunch later to see them done): {jobs[0].id}" \
        in printed
    assert f"{jobs[0].id} is running in another launch; left alone" in printed


@pytest.mark.slow
def test_threads_reach_the_workers_and_job_logs_start_clean(cli, tmp_path):
    _sweep(tmp_path, {"trial_seeds": 1})
    assert cli("sweep", "--threads", "1", "-c", "s.yaml", "--out", "out").code == 0
    log = next((tmp_path / "out").glob("*/log.txt")).read_text()
    assert ", 1 threads" in log.splitlines()[0], log  # the worker's first line: no runpy RuntimeWarning
    assert "RuntimeWarning" not in log and "\r" not in log
    assert "epoch 0 (1 of 1) train: train" in log


def test_threads_given_before_or_after_the_subcommand_reach_the_launcher(cli, tmp_path, monkeypatch):
    import dagrad.launch

    seen = []
    monkeypatch.setattr(dagrad.launch, "run_sweep", lambda *a, launcher, **k: seen.append(launcher.threads) or
                        dagrad.launch.SweepOutcome(tmp_path, []))
    _sweep(tmp_path, {"trial_seeds": 1})
    assert cli("--threads", "3", "sweep", "-c", "s.yaml").code == 0
    assert cli("sweep", "--threads", "2", "-c", "s.yaml", "--workers", "4").code == 0
    assert seen == [3, 2]


def test_the_process_launcher_takes_threads_from_the_command_line():
    from dagrad.launch import build_launcher

    assert build_launcher("processes", 2, threads=3).threads == 3
    assert build_launcher("local", 1, threads=1).threads == 1
    assert ProcessLauncher(2).threads >= 1


def test_the_worker_module_starts_without_a_runpy_warning(tmp_path):
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "dagrad.launch.worker", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "RuntimeWarning" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_sweep_piped_into_head_finishes_the_sweep(tmp_path):
    """`dagrad sweep | head -1`: the launcher outlives its reader and every job still finishes."""
    sweep = _sweep(tmp_path, {"trial_seeds": 2})
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(f"{sys.executable} -m dagrad sweep -c {sweep} --out {tmp_path / 'out'} | head -1",
                            shell=True, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=600)
    assert out.startswith("sweep t: 2 jobs in "), out
    assert "BrokenPipe" not in err and "Traceback" not in err, err
    deadline = time.time() + 300
    while len(list((tmp_path / "out").glob("*/done"))) < 2 and time.time() < deadline:
        time.sleep(0.5)
    assert len(list((tmp_path / "out").glob("*/done"))) == 2
