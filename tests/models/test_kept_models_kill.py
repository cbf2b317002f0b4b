"""Kept models survive a real SIGKILL mid-run: after `--resume` the run keeps exactly the models (files,
epochs, SHA-256) an uninterrupted run keeps, and every file the manifest names is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dagrad.models import read_manifest

ARGS = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "steps_per_epoch=4", "epochs=8",
        "checkpoints.keep=[last,best,every]"]


def dagrad(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dagrad.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def epochs_written(path) -> int:
    return path.read_text().count('"type": "epoch"') if path.exists() else 0


@pytest.mark.slow
def test_kept_models_survive_kill_and_resume(tmp_path):
    full = dagrad("train", "--quiet", "--out", str(tmp_path / "full"), *ARGS)
    victim = dagrad("train", "--quiet", "--out", str(tmp_path / "victim"), *ARGS)
    records = tmp_path / "victim" / "records.jsonl"
    deadline = time.time() + 120
    while epochs_written(records) < 2 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL and 2 <= epochs_written(records) < 8, "the kill must land mid-run"
    resumed = dagrad("train", "--quiet", "--resume", "--out", str(tmp_path / "victim"), *ARGS)
    for proc in (resumed, full):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    ours, theirs = read_manifest(tmp_path / "victim")["models"], read_manifest(tmp_path / "full")["models"]
    assert set(ours) == {"last", "best", *(f"epoch-{e}" for e in range(8))}
    assert {k: (e["epoch"], e["sha256"]) for k, e in ours.items()} == \
        {k: (e["epoch"], e["sha256"]) for k, e in theirs.items()}
    folder = tmp_path / "victim" / "models"
    assert sorted(p.name for p in folder.iterdir()) == sorted({"kept.json", *(e["file"] for e in ours.values())})
