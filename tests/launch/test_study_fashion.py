"""The shipped Fashion-MNIST study sweep (issue 26): a dry run lists its 120 jobs without the data present,
and its grid holds every reading beside its skip control and full training, at the settings its comment states."""

from __future__ import annotations

from collections import Counter

from dagrad.cli import main
from dagrad.launch import plan

READINGS = {"tensor", "element", "ggd", "extrapolate", "shrink", "ema"}


def test_a_dry_run_lists_every_job_without_data_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "-c", "sweeps/study_fashion", "--out", "out", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "sweep study_fashion: 120 jobs" in printed and printed.count(" new ") == 120
    assert not (tmp_path / "out").exists()


def test_every_reading_has_its_control_and_full_training_at_the_stated_settings(tmp_path):
    _, jobs, _ = plan("sweeps/study_fashion", tmp_path)
    cells = Counter()
    for job in jobs:
        c = job.experiment.cfg
        assert (c.data.name, c.data.test_envs, c.network.name, c.epochs, c.steps_per_epoch, c.eval_mode) == \
            ("rotated_fashion_mnist", [5], "mnist_cnn", 15, 6, "fast")
        assert c.data.batch_size == 16 and c.data.options["max_per_environment"] == 500
        assert (c.gradsamp.schedule, c.gradsamp.schedule_options) == ("periodic", {"start": 3, "every": 3})
        assert c.algorithm.hparams_seed == 0 and c.averaging.name == "none"
        cells[(c.algorithm.name, c.gradsamp.sampler)] += 1
    assert set(cells.values()) == {5}  # 5 trial seeds each
    for algorithm in ("erm", "coral", "dann"):
        assert {s for a, s in cells if a == algorithm} == READINGS | {"none", "skip"}
    assert {(j.experiment.cfg.trial_seed) for j in jobs} == {0, 1, 2, 3, 4}
