"""Report figures equal a direct pandas computation on the same records; mixed sources are flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import recordsfactory as rf

from dagrad.cli import main
from dagrad.analysis.tables import build, paired_verdict, tables_latex, tables_markdown


SETTINGS = ("none", "tensor", "skip")


def _sweep(tmp_path: Path, mixed_setting: str | None = None) -> Path:
    rng = np.random.RandomState(0)
    for setting in SETTINGS:
        for trial in range(3):
            for env in (0, 1):
                epochs = [{"metrics": rf.metrics(**{f"env{env}_in_acc": float(rng.uniform(0.3, 0.9))}),
                           "train_J": float(rng.uniform(50, 100)) * (0.6 if setting != "none" and i == 1 else 1),
                           "eval_J": float(rng.uniform(5, 10)),
                           "source": "measured:rapl" if setting == mixed_setting else "estimated:cpu-time"}
                          for i in range(3)]
                rf.write_run(tmp_path / f"{setting}-{trial}-{env}", test_envs=[env], trial_seed=trial,
                             sampler=setting, epochs=epochs)
    return tmp_path


def _direct(root: Path) -> pd.DataFrame:
    """The final epoch's accuracy and the run's summed energy, straight from the JSON."""
    rows = []
    for path in root.rglob("records.jsonl"):
        lines = [json.loads(t) for t in path.read_text().splitlines()]
        header, epochs = lines[0], [x for x in lines if x["type"] == "epoch"]
        env = header["data"]["test_envs"][0]
        rows.append({"sampler": header["config"]["gradsamp"]["sampler"], "trial": header["config"]["trial_seed"],
                     "env": env, "acc": 100 * epochs[-1]["metrics"][f"env{env}_in_acc"],
                     "train": sum(e["energy"]["train"]["joules"] for e in epochs),
                     "total": sum(e["energy"]["train"]["joules"] + e["energy"]["eval"]["joules"] for e in epochs)})
    return pd.DataFrame(rows)


def test_numbers_equal_a_direct_pandas_computation(tmp_path):
    root = _sweep(tmp_path)
    _, summary = build(root, "last")
    direct = _direct(root)
    per_trial = direct.groupby(["sampler", "trial"])[["acc", "train", "total"]].mean()
    for sampler in SETTINGS:
        row = summary[summary.sampler == sampler].iloc[0]
        d = direct[direct.sampler == sampler]
        env0 = d[d.env == 0]["acc"]
        assert row["acc:e0"] == pytest.approx(env0.mean())
        assert row["se:e0"] == pytest.approx(env0.std(ddof=1) / np.sqrt(3))
        avg = per_trial.loc[sampler, "acc"]
        assert row["acc:Avg"] == pytest.approx(avg.mean()) and row["se:Avg"] == pytest.approx(avg.sem())
        assert row["train_J"] == pytest.approx(per_trial.loc[sampler, "train"].mean())
        assert row["train_eval_J"] == pytest.approx(per_trial.loc[sampler, "total"].mean())
        assert row["train_eval_J_se"] == pytest.approx(per_trial.loc[sampler, "total"].sem())
        if sampler != "none":
            full = per_trial.loc["none"]
            assert row["saving_train_eval_pct"] == pytest.approx(100 * (1 - per_trial.loc[sampler, "total"].mean()
                                                                   / full["total"].mean()))
            diff = per_trial.loc[sampler, "acc"] - full["acc"]
            assert row["delta_full"] == pytest.approx(diff.mean()) and row["delta_full_se"] == pytest.approx(diff.sem())
    tensor = summary[summary.sampler == "tensor"].iloc[0]
    diff = per_trial.loc["tensor", "acc"] - per_trial.loc["skip", "acc"]
    assert tensor["delta_control"] == pytest.approx(diff.mean())
    assert tensor["verdict"] == paired_verdict(diff.mean(), diff.sem(), 3)
    text = tables_markdown(summary, "last")
    assert f"{tensor['acc:Avg']:.1f} ± {tensor['se:Avg']:.1f}" in text
    assert "vs its equal-energy control" in text and "‡" not in text
    assert r"\toprule" in tables_latex(summary, "last") and r"$\pm$" in tables_latex(summary, "last")


def test_verdict_rule():
    assert paired_verdict(1.0, 0.4, 3) == "GradSamp beats the control"
    assert paired_verdict(1.0, 0.6, 3) == "no clear difference"
    assert paired_verdict(-1.0, 0.4, 3) == "the control beats GradSamp"
    assert paired_verdict(5.0, float("nan"), 1).startswith("undecided")


def test_mixed_sources_are_flagged_not_silently_summed(tmp_path):
    root = _sweep(tmp_path, mixed_setting="tensor")  # tensor: train measured, eval estimated
    _, summary = build(root, "last")
    assert summary.set_index("sampler").loc["tensor", "mixed"]
    assert not summary.set_index("sampler").loc["none", "mixed"]
    assert summary.set_index("sampler").loc["tensor", "saving_flag"]
    text = tables_markdown(summary, "last")
    line = next(x for x in text.splitlines() if "| tensor |" in x)
    assert "‡" in line and "measured:rapl" in line
    assert "mixes measured and estimated" in text


def test_cli_report_writes_every_format_and_plots(tmp_path, capsys):
    root = _sweep(tmp_path / "runs")
    assert main(["report", str(root), "--selection", "last", "--out", str(tmp_path / "r")]) == 0
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"table.md", "rotated_digits-pareto.png", "rotated_digits-pareto.svg",
            "rotated_digits-curves.png", "rotated_digits-curves.svg"} <= names
    assert main(["report", str(root), "--format", "csv", "--selection", "last", "--out", str(tmp_path / "r")]) == 0
    tidy = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert {"accuracy_pct", "train_eval_energy_J", "delta_full_pp", "delta_control_pp"} <= set(tidy.quantity)
    assert len(pd.read_csv(tmp_path / "r" / "selected.csv")) == 3 * 3 * 2
    assert main(["report", str(tmp_path / "empty-does-not-exist")]) == 2


def test_energy_to_the_selected_epoch_beside_the_whole_run(tmp_path):
    """Training-domain validation picks epoch 0 here (best `out` accuracy); 'to selected' counts only it."""
    outs = [0.9, 0.5, 0.4]
    for trial in range(2):
        epochs = [{"metrics": rf.metrics(env0_in_acc=0.5, env1_out_acc=out, env2_out_acc=out),
                   "train_J": 10.0 * (i + 1), "eval_J": 1.0} for i, out in enumerate(outs)]
        rf.write_run(tmp_path / f"run{trial}", test_envs=[0], trial_seed=trial, sampler="none", epochs=epochs)
    selected, summary = build(tmp_path, "training_domain")
    assert list(selected["epoch"]) == [0, 0]
    row = summary.iloc[0]
    assert row["selected_J"] == pytest.approx(10.0 + 1.0)
    assert row["train_eval_J"] == pytest.approx(10 + 20 + 30 + 3 * 1.0)
    assert "to selected (J)" in tables_markdown(summary, "training_domain")
