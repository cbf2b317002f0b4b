"""Relaunching a sweep: finished jobs are never rerun, killed ones resume or restart, failures are
reported with their log and never stop the other jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from dagrad.cli import main
from dagrad.launch import LocalLauncher, run_sweep
from dagrad.launch.jobs import CONFIG_NAME, prepare
from dagrad.launch import plan
from dagrad.plugins import ALL_PLUGINS
from dagrad.records.files import read_records

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 3}


def write_sweep(path: Path, grid: dict, epochs: int = 3) -> Path:
    path.write_text(yaml.safe_dump({"name": "t", "base": [{**BASE, "epochs": epochs}], "grid": grid}))
    return path


def _complete(folder: Path, epochs: int) -> bool:
    lines = read_records(folder / "records.jsonl")
    return [r["epoch"] for r in lines if r["type"] == "epoch"] == list(range(epochs)) and lines[-1]["type"] == "summary"


def test_killed_sweep_relaunch_reruns_nothing_finished_and_loses_nothing(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 3}, epochs=5)
    out = tmp_path / "out"
    with open(tmp_path / "sweep.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dagrad.cli", "sweep", "-c", str(sweep), "--out", str(out),
                                 "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 150
    while not list(out.glob("*/done")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its worker, mid-sweep
    proc.wait()
    done = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "records.jsonl").read_bytes())
            for p in out.glob("*/done")}
    assert 1 <= len(done) < 3, (tmp_path / "sweep.log").read_text()

    outcome = run_sweep(sweep, out, launcher=LocalLauncher(threads=1), stream=None)
    assert {j.id for j in outcome.skipped} == set(done)
    assert not outcome.failed and len(outcome.results) == 3 - len(done)
    for name, (mtime, records) in done.items():
        assert (out / name / "done").stat().st_mtime_ns == mtime
        assert (out / name / "records.jsonl").read_bytes() == records
    assert all(_complete(job.folder, 5) and (job.folder / "done").is_file() for job in outcome.jobs)


def test_unusable_checkpoint_is_moved_aside_and_the_job_restarts(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": [0]}, epochs=2)
    _, jobs, out = plan(sweep, tmp_path / "out")
    job = jobs[0]
    prepare(job)
    (job.folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (job.folder / "records.jsonl").write_text('{"type": "header"}\n')
    outcome = run_sweep(sweep, out, launcher=LocalLauncher(threads=1), stream=None)
    assert not outcome.failed and _complete(job.folder, 2)
    moved = list(out.glob(f"{job.id}.broken-*"))
    assert len(moved) == 1 and (moved[0] / "checkpoint.pt").read_bytes() == b"not a checkpoint"
    assert "checkpoint unusable" in (moved[0] / "why-moved.txt").read_text()
    assert (job.folder / CONFIG_NAME).is_file() and "restarting" in job.log.read_text()


PLUGIN = '''
from dagrad.algorithms.erm import ERM
from dagrad.algorithms.registry import register


@register("boom")
class Boom(ERM):
    def update(self, minibatches, unlabeled=None):
        raise RuntimeError("boom in update")
'''


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path, capsys):
    plugin = tmp_path / "boom.py"
    plugin.write_text(PLUGIN)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": [{**BASE, "epochs": 2, "plugins": [str(plugin)]}],
                                     "grid": {"algorithms": ["boom", "erm"]}}))
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out"), "--workers", "2",
                 "--allow-plugins"]) == 1  # the worker processes inherit the consent
    printed = capsys.readouterr().out
    _, jobs, _ = plan(sweep, tmp_path / "out", ALL_PLUGINS)
    boom = next(j for j in jobs if j.point.algorithm == "boom")
    erm = next(j for j in jobs if j.point.algorithm == "erm")
    assert f"FAILED {boom.id}" in printed and str(boom.log) in printed and "failed 1" in printed
    assert "RuntimeError: boom in update" in boom.log.read_text()
    assert (erm.folder / "done").is_file() and not (boom.folder / "done").exists()
