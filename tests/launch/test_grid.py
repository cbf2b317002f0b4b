"""Sweep files -> jobs: expansion, identity independent of grid order, validation before writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dagrad.config.experiment import load_experiment
from dagrad.utils.errors import ConfigError
from dagrad.launch import plan, run_sweep

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
        "epochs": 2, "steps_per_epoch": 2}


def write_sweep(path: Path, grid: dict, base: list | None = None) -> Path:
    path.write_text(yaml.safe_dump({"name": "t", "base": base if base is not None else [BASE], "grid": grid}))
    return path


def test_grid_expands_to_resolved_configs_named_by_their_hash(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {
        "algorithms": ["erm", "coral"], "test_envs": [5, [0]], "trial_seeds": 2,
        "gradsamp": {"none": {"sampler": "none"}, "tensor": {"sampler": "tensor", "schedule_options": {"start": 1, "every": 2}}},
        "axes": {"algorithm.hparams.lr": [0.001, 0.01]}})
    _, jobs, out = plan(sweep, tmp_path / "out")
    assert len(jobs) == 2 * 2 * 2 * 2 * 2
    job = next(j for j in jobs if j.point.algorithm == "coral" and j.point.setting == "tensor"
               and j.point.test_envs == (0,) and j.point.trial_seed == 1 and dict(j.point.extra)["algorithm.hparams.lr"] == 0.01)
    direct = load_experiment(None, [
        "data.image_size=12", "data.batch_size=8", "data.eval_batch_size=512", "network.options.width=8", "epochs=2",
        "steps_per_epoch=2", "algorithm.name=coral", "data.test_envs=[0]", "trial_seed=1", "gradsamp.sampler=tensor",
        "gradsamp.schedule_options={start: 1, every: 2}", "algorithm.hparams={lr: 0.01}"])
    assert job.id == direct.run_id and job.folder == tmp_path / "out" / job.id
    assert job.experiment.cfg.seed is None  # training seed hashed from the run's identity by the engine
    assert not (tmp_path / "out").exists()  # planning writes nothing


def test_identity_does_not_depend_on_grid_order(tmp_path):
    a = write_sweep(tmp_path / "a.yaml", {"algorithms": ["erm", "coral"], "trial_seeds": [0, 1],
                                          "gradsamp": {"none": None, "skip": {"sampler": "skip"}}})
    b = write_sweep(tmp_path / "b.yaml", {"trial_seeds": [1, 0], "algorithms": ["coral", "erm"],
                                          "gradsamp": {"skip": {"sampler": "skip"}, "none": None}})
    ids_a = [j.id for j in plan(a, tmp_path)[1]]
    ids_b = [j.id for j in plan(b, tmp_path)[1]]
    assert len(ids_a) == 8 and sorted(ids_a) == sorted(ids_b) and ids_a != ids_b


def test_base_files_are_relative_to_the_sweep_and_loo_pairs_are_added(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.yaml").write_text(yaml.safe_dump(BASE))
    sweep = write_sweep(tmp_path / "cfg" / "s.yaml", {"test_envs": [0, 1], "leave_one_out_envs": 3},
                        base=["base.yaml", {"epochs": 3}])
    _, jobs, _ = plan(sweep, tmp_path / "o")
    assert sorted(j.point.test_envs for j in jobs) == [(0,), (0, 1), (0, 2), (1,), (1, 2)]
    assert all(j.experiment.cfg.epochs == 3 and j.experiment.network.options["width"] == 8 for j in jobs)


@pytest.mark.parametrize("grid, message", [
    ({"algorithms": ["erm", "nope"]}, "unknown algorithm 'nope'"),
    ({"colours": [1]}, "unknown axis"),
    ({"gradsamp": {"bad": {"sampler": "magic"}}}, "gradsamp.sampler"),
    ({"trial_seeds": [-1]}, "non-negative"),
])
def test_a_bad_sweep_writes_nothing(tmp_path, grid, message):
    sweep = write_sweep(tmp_path / "s.yaml", grid)
    with pytest.raises(ConfigError, match=message):
        run_sweep(sweep, tmp_path / "out", stream=None)
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_jobs_and_writes_nothing(tmp_path, capsys):
    from dagrad.cli import main

    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 2})
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "2 jobs" in printed and printed.count(" new ") == 2
    assert not (tmp_path / "out").exists()
    assert main(["sweep", "-c", str(sweep), "--workers", "0"]) == 2


def test_variants_set_settings_together_and_exclude_drops_matching_points(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", {
        "algorithms": ["erm", "coral"], "trial_seeds": 2,
        "gradsamp": {"none": {"sampler": "none"}, "skip": {"sampler": "skip"}, "tensor": {"sampler": "tensor"}},
        "variants": {"schedule": {"every2": {"gradsamp.schedule": "periodic",
                                              "gradsamp.schedule_options": {"start": 1, "every": 2}},
                                  "random": {"gradsamp.schedule": "random",
                                             "gradsamp.schedule_options": {"probability": 0.5}}}},
        "exclude": [{"algorithms": "coral", "schedule": "random"}, {"algorithms": "coral", "gradsamp": "skip"}]},
        base=[{**BASE, "gradsamp": {"schedule_options": {"start": 3, "every": 3}}}])
    _, jobs, _ = plan(sweep, tmp_path / "out")
    named = {(j.point.algorithm, j.point.setting, dict(j.point.variants)["schedule"], j.point.trial_seed) for j in jobs}
    # erm: full (one job: the schedule of switched-off GradSamp is no part of its identity), skip and tensor at
    # both schedules; coral: full and tensor at every2 only
    assert len(jobs) == 2 * (1 + 2 * 2) + 2 * (1 + 1)
    assert ("coral", "tensor", "random", 0) not in named and ("coral", "skip", "every2", 0) not in named
    random = next(j for j in jobs if j.point.setting == "tensor" and dict(j.point.variants)["schedule"] == "random")
    assert random.experiment.cfg.gradsamp.schedule == "random"
    assert random.experiment.gradsamp.schedule.options == {"probability": 0.5}  # replaced, not merged with start/every
    assert random.name.endswith("schedule=random")
    every2 = next(j for j in jobs if j.point.setting == "skip" and dict(j.point.variants)["schedule"] == "every2")
    assert every2.experiment.gradsamp.schedule.options == {"start": 1, "every": 2}


@pytest.mark.parametrize("grid, message", [
    ({"variants": {"schedule": {"a": {"epochs": 2}}}, "exclude": [{"colour": "red"}]},
     r"grid.exclude\[0\].colour: not an axis of this grid; allowed: datasets, algorithms, gradsamp, schedule"),
    ({"variants": {"schedule": {"a": {"epochs": 2}}}, "exclude": [{"schedule": "b"}]},
     r"grid.exclude\[0\].schedule: 'b' is not one of its values \(a\)"),
    ({"algorithms": ["erm"], "exclude": [{"algorithms": "erm"}]}, "the rules leave no job to run"),
    ({"variants": {"algorithms": {"x": {}}}}, "a variant axis needs its own name"),
    ({"variants": {"schedule": ["every2"]}}, "expected a mapping of variant name"),
    ({"variants": {"s": {"a": {"epochs": 0}}}}, "epochs"),
    ({"axes": {"epochs": [2]}, "variants": {"epochs": {"a": {}}}}, "also an `axes:` key"),
])
def test_bad_variants_and_rules_are_one_clear_error(tmp_path, grid, message):
    sweep = write_sweep(tmp_path / "s.yaml", grid)
    with pytest.raises(ConfigError, match=message):
        plan(sweep, tmp_path / "out")


def test_jobs_run_side_by_side_by_default_and_grouped_on_request(tmp_path, capsys):
    """The settings compared (full, reading, control) of one (dataset, test env, hparams seed, trial seed)
    are adjacent, so N workers run them at once; `grouped` keeps setting after setting. Only the order
    changes: the same jobs (ids, names) either way."""
    from dagrad.cli import main

    sweep = write_sweep(tmp_path / "s.yaml", {
        "test_envs": [5, 0], "hparams_seeds": 2, "trial_seeds": 2,
        "gradsamp": {"none": {"sampler": "none"}, "tensor": {"sampler": "tensor"}, "skip": {"sampler": "skip"}}})
    side = plan(sweep, tmp_path / "out")[1]
    grouped = plan(sweep, tmp_path / "out", order="grouped")[1]
    assert len(side) == 24 and sorted((j.id, j.name) for j in side) == sorted((j.id, j.name) for j in grouped)
    for i in range(0, 24, 3):
        group = side[i:i + 3]
        assert [j.point.setting for j in group] == ["none", "skip", "tensor"]  # the grid's order (keys sorted)
        assert len({(j.point.test_envs, j.point.hparams_seed, j.point.trial_seed) for j in group}) == 1
    assert [j.point.setting for j in grouped] == (["none"] * 4 + ["skip"] * 4 + ["tensor"] * 4) * 2  # per test env
    assert [(j.point.test_envs, j.point.hparams_seed, j.point.trial_seed) for j in side[::3]] == \
        [(j.point.test_envs, j.point.hparams_seed, j.point.trial_seed) for j in grouped[:4] + grouped[12:16]]
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == [j.id for j in side]
    assert main(["sweep", "-c", str(sweep), "--out", str(tmp_path / "out"), "--dry-run", "--order", "grouped"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [j.id for j in grouped]
    assert main(["sweep", "-c", str(sweep), "--dry-run", "--order", "random"]) == 2
    assert "unknown job order 'random'; choose one of: side-by-side, grouped" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_api_refuses_an_unknown_order_before_anything_runs(tmp_path):
    import dagrad

    sweep = write_sweep(tmp_path / "s.yaml", {"trial_seeds": 1})
    with pytest.raises(ConfigError, match="unknown job order 'shuffled'; choose one of: side-by-side, grouped"):
        dagrad.sweep(sweep, out=tmp_path / "out", order="shuffled")
    assert not (tmp_path / "out").exists()
