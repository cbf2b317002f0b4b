"""Round 3 (issue 21, item 11): the API answers a wrong type with a DagradError naming its own parameter
(never a raw TypeError, never a CLI flag), and load_runs and report agree on folders that are not there."""

from __future__ import annotations

import pytest

import dagrad
from dagrad.utils.errors import DagradError, RecordsError

CASES = [
    ("train-out", lambda: dagrad.train("demo", out=5, epochs=1, progress=False), "out: expected a path"),
    ("train-resume-out", lambda: dagrad.train(out=5, resume=True), "out: expected a path"),
    ("load_run-None", lambda: dagrad.load_run(None), "folder: expected a path"),
    ("load_runs-int", lambda: dagrad.load_runs(5), "folder: expected a folder"),
    ("report-int", lambda: dagrad.report(5), "runs: expected a folder"),
    ("report-selection", lambda: dagrad.report(".", selection=5), "selection: expected a name or a list of names"),
    ("study-alpha", lambda: dagrad.study(".", alpha="x"), "alpha: the test level must be a number strictly between"),
    ("study-alpha-range", lambda: dagrad.study(".", alpha=2.0), "alpha: the test level"),
    ("sweep-dict", lambda: dagrad.sweep({}), "sweep_yaml: expected a path"),
    ("sweep-options", lambda: dagrad.sweep("s.yaml", launcher_options=[1]), "launcher_options: expected a dict"),
    ("train-plugins", lambda: dagrad.train("demo", plugins=5, epochs=1), "plugins: expected a module name"),
    ("check-plugins", lambda: dagrad.check_config("demo", plugins=[5]), "plugins: expected a module name"),
    ("report-selection-name", lambda: dagrad.report(".", selection="nope"), "selection: 'nope' is unknown; choose"),
    ("report-se", lambda: dagrad.report(".", se="x"), "se: 'x' is unknown; choose one of: sample, domainbed"),
    ("study-selection", lambda: dagrad.study(".", selection=["oracle"]), "selection: list is unknown"),
]


@pytest.mark.parametrize("call,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_type_is_a_dagrad_error_naming_the_parameter(tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DagradError) as raised:
        call()
    assert str(raised.value).startswith(message), str(raised.value)
    assert "--" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_load_runs_and_report_agree_on_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecordsError, match=r"folder\[0\]: no folder or record file at nope"):
        dagrad.load_runs(["nope"])
    with pytest.raises(RecordsError, match=r"runs\[0\]: no folder or record file at nope"):
        dagrad.report(["nope"])


def test_train_names_its_own_parameters_where_the_cli_names_flags(tmp_path, monkeypatch):
    from helpers.faultinject import TINY

    monkeypatch.chdir(tmp_path)
    settings = {k.replace(".", "__"): v for k, v in (o.split("=") for o in TINY)}
    settings = {k: int(v) for k, v in settings.items()}
    dagrad.train(out="run", epochs=1, progress=False, **settings)
    with pytest.raises(DagradError) as raised:
        dagrad.train(out="run", epochs=1, progress=False, **settings)
    assert "pass resume=True to continue it, restart=True to move it aside" in str(raised.value)
    assert "--" not in str(raised.value)
