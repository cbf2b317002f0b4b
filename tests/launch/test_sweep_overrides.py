"""`dagrad sweep -c X key=value ...`: keys for every job and for the grid, with the identities the same keys
in the file would give."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dagrad.cli import main
from dagrad.utils.errors import ConfigError
from dagrad.launch import plan, read_sweep

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "steps_per_epoch": 3, "epochs": 2}


def write(path: Path, grid: dict, **base) -> Path:
    path.write_text(yaml.safe_dump({"name": "o", "base": [{**BASE, **base}], "grid": grid}))
    return path


def ids(sweep: Path, overrides=()) -> list[str]:
    return [job.id for job in plan(sweep, sweep.parent / "out", overrides=overrides)[1]]


def test_overrides_give_the_jobs_the_file_would(tmp_path):
    plain = write(tmp_path / "plain.yaml", {"trial_seeds": [0]})
    written = write(tmp_path / "written.yaml", {"trial_seeds": [0, 1], "algorithms": ["erm", "coral"]}, epochs=3,
                    algorithm={"hparams": {"lr": 0.01}})
    given = ids(plain, ["grid.trial_seeds=[0,1]", "epochs=3", "grid.algorithms=[erm,coral]", "algorithm.hparams.lr=0.01"])
    assert len(given) == 4 and given == ids(written)
    assert set(given).isdisjoint(ids(plain))  # a changed key changes every job's identity


def test_an_override_replaces_the_files_own_key_and_reaches_every_job(tmp_path):
    sweep = write(tmp_path / "s.yaml", {"trial_seeds": 3, "hparams_seeds": [0, 1]}, epochs=5)
    _, jobs, _ = plan(sweep, tmp_path / "out", overrides=["epochs=2"])
    assert len(jobs) == 6 and {job.experiment.cfg.epochs for job in jobs} == {2}
    assert read_sweep(sweep, ["name=renamed", "launcher.name=local"]).name == "renamed"
    assert read_sweep(sweep, ["launcher.name=local"]).launcher == {"name": "local"}


def test_an_override_a_grid_axis_decides_is_refused_with_the_axis_to_change(tmp_path):
    sweep = write(tmp_path / "s.yaml", {"trial_seeds": [0, 1]})
    with pytest.raises(ConfigError, match=r"override 'trial_seed=3': the grid sets trial_seed for each job .*"
                                          r"change the grid instead, e.g. grid.trial_seeds=\[0,1\]"):
        plan(sweep, tmp_path / "out", overrides=["trial_seed=3"])
    with pytest.raises(ConfigError, match="must look like key=value"):
        read_sweep(sweep, ["epochs"])
    with pytest.raises(ConfigError, match="grid.trial_seeds: expected non-negative integers"):
        read_sweep(sweep, ["grid.trial_seeds=[-1]"])


def test_the_command_line_dry_run_lists_the_overridden_jobs(tmp_path, capsys):
    sweep = write(tmp_path / "s.yaml", {"trial_seeds": [0]})
    assert main(["sweep", "-c", str(sweep), "grid.trial_seeds=[0,1,2]", "epochs=3", "--out", str(tmp_path / "o"),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"sweep o: 3 jobs -> {tmp_path / 'o'}") and "trial_seed=2" in out
    assert not (tmp_path / "o").exists()
    assert main(["sweep", "-c", str(sweep), "algorithm.name=nope", "--dry-run"]) == 2
    assert "nope" in capsys.readouterr().err
