"""The Python API: train / load_run round trips, every config form giving one identity, the CLI's error
messages raised as exceptions (never SystemExit), warnings once, and the report as objects."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr

import pandas as pd
import pytest
import yaml

import dagrad
from dagrad import cli
from dagrad.config.files import load_config

TINY = dict(data__image_size=12, network__options__width=8, data__batch_size=8, epochs=3, steps_per_epoch=3,
            data__eval_batch_size=512)
SAMPLED = dict(epochs=4, gradsamp={"sampler": "tensor", "schedule_options": {"start": 2, "every": 2}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny GradSamp run trained through the API (shared by the read-only tests below)."""
    out = tmp_path_factory.mktemp("api") / "run"
    return dagrad.train(out=out, progress=False, **{**TINY, **SAMPLED})


def test_train_then_load_run_gives_equal_frames(trained):
    again = dagrad.load_run(trained.folder)
    pd.testing.assert_frame_equal(again.epochs, trained.epochs)
    assert again.summary == trained.summary
    assert again.header == trained.header and again.config == trained.config
    records = [line for line in again.records.epochs]
    assert list(trained.epochs["epoch"]) == [0, 1, 2, 3]
    assert list(trained.epochs["kind"]) == ["train", "train", "sampled", "train"]
    assert list(trained.epochs["updates"]) == [3, 6, 6, 9]
    assert trained.epochs["env5_in_acc"].tolist() == [r["metrics"]["env5_in_acc"] for r in records]
    assert trained.epochs["ood_acc"].tolist() == trained.epochs["env5_in_acc"].tolist()
    assert trained.epochs["cum_J"].iloc[-1] == pytest.approx(trained.summary["train_J"] + trained.summary["eval_J"])
    assert trained.epochs["train_sources"].iloc[0] == ", ".join(trained.summary["train_sources"])
    assert trained.epochs["gradsamp_step_norm"].notna().tolist() == [False, False, True, False]
    assert (trained.epochs["train_flops"] > 0).tolist() == [True, True, False, True]  # a draw trains nothing
    assert (trained.epochs["eval_flops"] > 0).all()
    assert trained.complete and trained.summary["updates"] == 9
    assert dagrad.load_runs(trained.folder.parent)[0].run_id == trained.run_id


def test_plot_is_a_figure_of_accuracy_and_energy(trained):
    from matplotlib.figure import Figure

    fig = trained.plot()
    assert isinstance(fig, Figure)
    acc, energy = fig.axes
    ood = acc.get_lines()[0]
    assert list(ood.get_ydata()) == pytest.approx(list(100 * trained.epochs["ood_acc"]))
    assert list(energy.get_lines()[2].get_ydata()) == pytest.approx(list(trained.epochs["cum_J"]))
    assert any(line.get_label().startswith("sampled epochs") for line in acc.get_lines())


def test_dict_path_and_experiment_config_give_one_identity(tmp_path):
    data = {"data": {"image_size": 12, "batch_size": 8}, "algorithm": {"name": "coral"}, "epochs": 3}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    ids = {
        dagrad.check_config(data).run_id,
        dagrad.check_config(path).run_id,
        dagrad.check_config(str(path)).run_id,
        dagrad.check_config([path]).run_id,
        dagrad.check_config(load_config(path)).run_id,
        dagrad.check_config(dagrad.check_config(path)).run_id,
        dagrad.check_config(None, data__image_size=12, **{"data.batch_size": 8}, algorithm={"name": "coral"},
                            epochs=3).run_id,
    }
    assert len(ids) == 1
    assert dagrad.check_config(data, algorithm__name="erm").run_id != ids.pop()
    assert dagrad.check_config(data, device="cpu", tracking__tensorboard=True).run_id == \
        dagrad.check_config(data).run_id  # where a run executes is not what it is


def _cli_error(*argv: str) -> str:
    err = io.StringIO()
    with redirect_stderr(err):
        assert cli.main(list(argv)) == 2
    line = err.getvalue().strip()
    assert line.startswith("dagrad: error: ") and "\n" not in line
    return line.removeprefix("dagrad: error: ")


def test_a_bad_key_raises_config_error_with_the_cli_message(tmp_path):
    with pytest.raises(dagrad.ConfigError) as bad_key:
        dagrad.train(out=tmp_path / "a", data__fo=1)
    assert str(bad_key.value) == _cli_error("train", "--out", str(tmp_path / "b"), "data.fo=1")
    with pytest.raises(dagrad.ConfigError) as bad_value:
        dagrad.train(out=tmp_path / "a", epochs=0)
    assert str(bad_value.value) == _cli_error("train", "--out", str(tmp_path / "b"), "epochs=0")
    with pytest.raises(dagrad.ConfigError) as missing:
        dagrad.train("no/such/config.yaml", out=tmp_path / "a")
    assert str(missing.value) == _cli_error("train", "-c", "no/such/config.yaml", "--out", str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_no_system_exit_reaches_the_caller(tmp_path):
    for call in (lambda: dagrad.train(resume=True), lambda: dagrad.train(42), lambda: dagrad.load_run(tmp_path),
                 lambda: dagrad.load_runs(tmp_path / "missing"), lambda: dagrad.report(tmp_path),
                 lambda: dagrad.report(tmp_path, selection="best"),
                 lambda: dagrad.sweep(tmp_path / "none.yaml", workers=0),
                 lambda: dagrad.train(out=tmp_path / "r", resume=True)):
        with pytest.raises(dagrad.DagradError) as caught:
            call()
        assert "\n" not in str(caught.value)
    assert dagrad.load_runs(tmp_path) == []


def test_each_distinct_warning_is_shown_once(tmp_path, monkeypatch, capsys):
    from dagrad.run import parts
    from dagrad.utils import notices

    original = parts.build_meter

    def noisy(*args, **kwargs):
        warnings.warn("a warning every run would repeat", UserWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(parts, "build_meter", noisy)
    monkeypatch.setattr(notices, "_SHOWN", set())
    for name in ("a", "b"):
        dagrad.train(out=tmp_path / name, progress=False, **{**TINY, "epochs": 1, "steps_per_epoch": 1})
    assert capsys.readouterr().err.count("dagrad: warning: a warning every run would repeat") == 1


def test_report_returns_what_the_cli_writes(trained, tmp_path):
    from matplotlib.figure import Figure

    from dagrad.analysis.report import write_report

    rep = dagrad.report([trained], selection="last")
    text, _ = write_report(trained.folder, "md", "last", out=tmp_path / "cli", plots=False)
    assert rep.text == text
    table = rep.tables["rotated_digits"]
    assert list(table["algorithm"]) == ["ERM"] and list(table["setting"]) == ["tensor"]
    assert table["Avg"].iloc[0] == f"{100 * trained.summary['ood_acc']:.1f}"
    assert set(rep.figures) == {"rotated_digits-pareto", "rotated_digits-curves"}
    assert all(isinstance(f, Figure) for f in rep.figures.values())
    assert rep.tidy.query("quantity == 'accuracy_pct' and column == 'Avg'")["mean"].iloc[0] == \
        pytest.approx(100 * trained.summary["ood_acc"])
    latex = dagrad.report(trained.folder.parent, selection="last", format="latex")
    assert latex.text.startswith(r"\subsection{Model selection: Last checkpoint") and r"\begin{table}" in latex.text


def test_package_root_is_cheap_and_lazy():
    import subprocess
    import sys

    code = "import sys, dagrad; assert 'dagrad.api' not in sys.modules and 'torch' not in sys.modules; " \
           "dagrad.train; assert 'dagrad.api' in sys.modules; print(dagrad.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == dagrad.__version__
    with pytest.raises(AttributeError):
        dagrad.no_such_name  # noqa: B018


@pytest.mark.slow
def test_sweep_runs_the_grid_and_reads_back(tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "base": [{"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512},
                  "network": {"options": {"width": 8}}, "epochs": 2, "steps_per_epoch": 2}],
        "grid": {"trial_seeds": 1, "gradsamp": {"none": None, "skip": {"sampler": "skip"}}}}))
    sweep = dagrad.sweep(sweep_file, out=tmp_path / "sweep", launcher="local")
    assert torch.get_num_threads() == threads  # the local launcher's per-job setting does not outlive the sweep
    assert "sweep sweep: 2 jobs" in capsys.readouterr().out  # the CLI's progress lines
    assert sweep.failed == [] and sorted(sweep.jobs["state"]) == ["done", "done"]
    assert set(sweep.jobs["this_launch"]) == {"done"}
    runs = sweep.runs
    assert sorted(r.config["gradsamp"]["sampler"] for r in runs) == ["none", "skip"]
    assert all(r.complete and len(r.epochs) == 2 for r in runs)
    again = dagrad.sweep(sweep_file, out=tmp_path / "sweep", launcher="local")  # a relaunch skips finished jobs
    assert set(again.jobs["this_launch"]) == {"already done"}
    rep = sweep.report(selection="last")
    assert sorted(rep.tables["rotated_digits"]["setting"]) == ["full", "skip"]
    with pytest.raises(dagrad.ConfigError):
        dagrad.sweep(sweep_file, out=tmp_path / "other", launcher="nonesuch")
    assert not (tmp_path / "other").exists()
