"""Round 3 (issue 21, items 10, 13, 15, 18): key=value overrides anywhere on the line, names that stay one
path component, bounds on values accepted silently before, and no traceback from odd numbers."""

from __future__ import annotations

import pytest

from dagrad.cli import _parse, build_parser
from helpers.faultinject import TINY, snapshot


@pytest.mark.parametrize("argv,overrides", [
    (["train", "epochs=1", "-c", "demo", "steps_per_epoch=1"], ["epochs=1", "steps_per_epoch=1"]),
    (["train", "-c", "demo", "epochs=3", "--quiet", "trial_seed=1"], ["epochs=3", "trial_seed=1"]),
    (["train", "a=1", "--out", "o", "b=2", "--quiet", "a=3"], ["a=1", "b=2", "a=3"]),
    (["energy", "probe", "--seconds", "1", "energy.backend=estimate"], ["energy.backend=estimate"]),
], ids=["before-and-after-c", "after-quiet", "order-kept", "energy"])
def test_overrides_are_accepted_anywhere_in_order(argv, overrides):
    assert _parse(build_parser(), argv).overrides == overrides


def test_stray_words_are_still_refused(cli, capsys):
    result = cli("train", "-c", "demo", "--quiet", "stray")
    assert result.code == 2 and "override 'stray' must look like key=value" in result.err
    with pytest.raises(SystemExit) as stopped:
        cli("status", "run", "epochs=1")
    assert stopped.value.code == 2 and "unrecognized arguments: epochs=1" in capsys.readouterr().err


def test_intermixed_overrides_reach_the_run(cli, tmp_path):
    result = cli("train", "epochs=1", "--quiet", "-c", "demo", *TINY, "--out", "run", "steps_per_epoch=1",
                 "trial_seed=1")
    assert result.code == 0, result.err
    from dagrad.analysis.runs import read_run

    config = read_run(tmp_path / "run").header["config"]
    assert (config["epochs"], config["steps_per_epoch"], config["trial_seed"]) == (1, 1, 1)


@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", "..", "a\\b", "tab\there"])
def test_a_run_name_is_one_folder_name(cli, tmp_path, name):
    before = snapshot(tmp_path)
    cli("train", f"name={name}", *TINY, "epochs=1").assert_one_line_error(
        "name: ", "is not one folder name", "without '/'")
    assert snapshot(tmp_path) == before


def test_a_sweep_name_is_one_folder_name(cli, tmp_path):
    (tmp_path / "s.yaml").write_text("name: ../../../x\nbase: [demo]\n")
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error("name: '../../../x' is not one folder name")
    cli("sweep", "-c", "s.yaml").assert_one_line_error("name: '../../../x' is not one folder name")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("override,message", [
    ("name=" + "n" * 5000, "name: a name of 5000 characters; allowed: at most 100"),
    ("data.holdout_fraction=0.999", "data.holdout_fraction: 0.999 is out of range; allowed: a finite number in "
                                    "(0, 0.5]"),
    ("data.batch_size=100000", "data.batch_size: 100000 is out of range; allowed: an integer in [1, 16384]"),
], ids=["long-name", "holdout", "batch-size"])
def test_values_that_were_accepted_silently_have_bounds(cli, tmp_path, override, message):
    before = snapshot(tmp_path)
    line = cli("train", "--out", "run", *TINY, override).assert_one_line_error(message)
    assert len(line) < 300
    assert snapshot(tmp_path) == before


def test_a_batch_larger_than_an_environment_is_named_before_training(cli):
    result = cli("train", "--quiet", "--out", "run", "data.image_size=12", "network.options.width=8",
                 "data.batch_size=600", "epochs=1", "steps_per_epoch=1")
    assert result.code == 0, result.err
    assert "dagrad: warning: data.batch_size: 600 examples per environment per step is more than the 240 of " \
           "env0_in" in result.err
