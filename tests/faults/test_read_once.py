"""`dagrad train` and `dagrad sweep` (and `dagrad.train` / `dagrad.sweep`) are thin shells over one
orchestration that reads each config and sweep file exactly once: every read of a watched file is counted,
and after its first read the file is overwritten with text that is not YAML, so a second read would fail
the command however it read the file."""

from __future__ import annotations

import pathlib
from collections import Counter
from pathlib import Path

import pytest
import yaml

import dagrad
from dagrad.launch.runner import LocalLauncher

TINY = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "epochs": 1, "steps_per_epoch": 1}
SPOILED = b"{this is: [not yaml"


@pytest.fixture
def watched(monkeypatch):
    """watched(*paths) -> Counter of reads per watched path; each file is spoiled after its first read."""
    reads: Counter = Counter()
    files: set[Path] = set()
    read_bytes = pathlib.Path.read_bytes

    def counting(self: Path) -> bytes:
        data = read_bytes(self)
        key = Path(self).resolve()
        if key in files:
            reads[key] += 1
            Path(key).write_bytes(SPOILED)  # a second read, by any means, sees this
        return data

    monkeypatch.setattr(pathlib.Path, "read_bytes", counting)

    def watch(*paths: Path) -> Counter:
        files.update(Path(p).resolve() for p in paths)
        return reads

    return watch


def _config_files(folder: Path) -> tuple[Path, Path]:
    base = folder / "base.yaml"
    base.write_text(yaml.safe_dump(TINY))
    config = folder / "cfg.yaml"
    config.write_text(yaml.safe_dump({"include": ["base.yaml"], "algorithm": {"name": "erm"}}))
    return config, base


def _sweep_files(folder: Path) -> tuple[Path, Path]:
    base = folder / "base.yaml"
    base.write_text(yaml.safe_dump(TINY))
    sweep = folder / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "once", "base": ["base.yaml"], "grid": {"trial_seeds": 2},
                                     "launcher": {"name": "local"}}))
    return sweep, base


@pytest.fixture
def no_jobs_run(monkeypatch):
    """The local launcher runs nothing (the sweep is planned, prepared and launched for real up to there)."""
    launched: list = []
    monkeypatch.setattr(LocalLauncher, "launch", lambda self, todo, progress: launched.extend(todo) or [])
    return launched


def test_the_train_command_reads_each_config_file_once(cli, tmp_path, watched):
    config, base = _config_files(tmp_path)
    reads = watched(config, base)
    result = cli("--threads", "1", "train", "-c", "cfg.yaml", "--out", "run", "--quiet")
    assert result.code == 0, result.err
    assert "records: run/records.jsonl" in result.out
    assert reads == {config.resolve(): 1, base.resolve(): 1}


def test_the_sweep_command_reads_the_sweep_and_its_base_once(cli, tmp_path, watched, no_jobs_run):
    sweep, base = _sweep_files(tmp_path)
    reads = watched(sweep, base)
    result = cli("--threads", "1", "sweep", "-c", "s.yaml", "--out", "out", "epochs=1")
    assert result.code == 0, result.err
    assert "sweep once: 2 jobs in out (0 already done, 0 to resume or restart); launcher local" in result.out
    assert len(no_jobs_run) == 2 and len(list((tmp_path / "out").glob("*/config.json"))) == 2
    assert reads == {sweep.resolve(): 1, base.resolve(): 1}


def test_the_dry_run_reads_the_sweep_and_its_base_once(cli, tmp_path, watched):
    sweep, base = _sweep_files(tmp_path)
    reads = watched(sweep, base)
    result = cli("sweep", "-c", "s.yaml", "--out", "out", "--dry-run")
    assert result.code == 0, result.err
    assert result.out.startswith("sweep once: 2 jobs -> out\n")
    assert reads == {sweep.resolve(): 1, base.resolve(): 1}


def test_the_api_reads_each_file_once_too(tmp_path, watched, no_jobs_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep, base = _sweep_files(tmp_path)
    reads = watched(sweep, base)
    outcome = dagrad.sweep(sweep, out=tmp_path / "out")
    assert len(outcome.jobs) == 2 and len(no_jobs_run) == 2
    assert reads == {sweep.resolve(): 1, base.resolve(): 1}
    (tmp_path / "again").mkdir()
    config, base = _config_files(tmp_path / "again")
    reads = watched(config, base)
    exp = dagrad.check_config(config)
    assert exp.cfg.epochs == 1 and reads[config.resolve()] == 1 and reads[base.resolve()] == 1
