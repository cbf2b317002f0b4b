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
    from dagrad.analysis.runs import load_run

    config = load_run(tmp_path / "run").header["config"]
    assert (config["epochs"], config["steps_per_epoch"], config["trial_seed"]) == (1, 1, 1)
