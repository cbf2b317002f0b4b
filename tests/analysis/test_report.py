"""The whole report on hand-written records: every selection method's table as DomainBed's
collect_results prints them, the all-datasets table, the SE conventions, and GradSamp runs paired with
the skip run whose GradSamp settings match exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import recordsfactory as rf

from dagrad.analysis.report import compact_cells, write_report
from dagrad.analysis.runs import mean_se
from dagrad.analysis.tables import build
from dagrad.cli import main

M = rf.metrics
TEST_ACC = {0: [0.6, 0.7, 0.8], 1: [0.5, 0.5, 0.8]}  # test env -> accuracy per trial seed at the chosen epoch


def _sweep(root: Path, pairs: bool = False) -> Path:
    """Test envs 0 and 1, trial seeds 0-2, two epochs: epoch 0 has the better training-domain `out`
    accuracy (selected by training-domain validation), epoch 1 is the last (taken by the oracle)."""
    for env, accs in TEST_ACC.items():
        train = [i for i in range(3) if i != env]
        for trial, acc in enumerate(accs):
            best = {f"env{i}_out_acc": 0.9 for i in train}
            rf.write_run(root / f"t{env}-{trial}", test_envs=[env], trial_seed=trial, epochs=[
                {"metrics": M(**best, **{f"env{env}_in_acc": acc, f"env{env}_out_acc": 0.1}), "train_J": 1, "eval_J": 1},
                {"metrics": M(**{f"env{env}_in_acc": acc - 0.3, f"env{env}_out_acc": 0.2}), "train_J": 1, "eval_J": 1},
            ])
    if pairs:  # leave-one-domain-out for test env 0, trial 0: validation = the pair runs' accuracy on v
        for v in (1, 2):
            rf.write_run(root / f"p0{v}", test_envs=[0, v], trial_seed=0, epochs=[
                {"metrics": M(**{f"env{v}_in_acc": 0.2}), "train_J": 1, "eval_J": 1},
                {"metrics": M(**{f"env{v}_in_acc": 0.6}), "train_J": 1, "eval_J": 1},
            ])
    return root


def test_sample_and_domainbed_standard_errors_by_hand():
    x = [60.0, 70.0, 80.0]
    assert mean_se(x)[:2] == pytest.approx((70.0, 10.0 / math.sqrt(3)))  # std ddof 1 = 10
    assert mean_se(x, ddof=0)[:2] == pytest.approx((70.0, math.sqrt(200 / 3) / math.sqrt(3)))
    # collect_results' format_mean: 100 * np.std(data / sqrt(n))
    assert mean_se(x, ddof=0)[1] == pytest.approx(np.std(np.array(x) / np.sqrt(3)))


def test_every_selection_method_in_one_report(tmp_path):
    root = _sweep(tmp_path / "runs")
    text, files = write_report(root, plots=False)
    assert text.index("## Training-domain validation") < text.index("## Test-domain validation (oracle)")
    assert "no table: it needs the runs holding out each pair of environments" in text
    sections = ("\n" + text).split("\n## ")
    td = next(s for s in sections if s.startswith("Training-domain"))
    oracle = next(s for s in sections if s.startswith("Test-domain"))
    # training-domain: epoch 0 -> env0 60/70/80 (70.0 ± 5.8), env1 50/50/80 (60.0 ± 10.0)
    assert "| ERM | full | 70.0 ± 5.8 | 60.0 ± 10.0 | 65.0 ± 7.6 |" in td
    # oracle: the last epoch, 30 points lower everywhere
    assert "| ERM | full | 40.0 ± 5.8 | 30.0 ± 10.0 | 35.0 ± 7.6 |" in oracle
    # the all-datasets table closes each method's section: each dataset's Avg, then their mean
    assert "### All datasets" in td and "| algorithm | setting | rotated_digits | Avg |" in td
    assert "| ERM | full | 65.0 ± 7.6 | 65.0 |" in td
    assert files == [tmp_path / "runs" / "report" / "table.md"]


def test_domainbed_se_and_selection_restriction(tmp_path):
    root = _sweep(tmp_path / "runs")
    text, _ = write_report(root, selection=["training_domain"], plots=False, se="domainbed")
    # ddof 0: env0 std(60, 70, 80) = 8.165 -> SE 4.7; env1 std(50, 50, 80) = 14.14 -> SE 8.2
    assert "| ERM | full | 70.0 ± 4.7 | 60.0 ± 8.2 |" in text
    assert "Test-domain" not in text and "DomainBed's collect_results convention" in text
    latex, _ = write_report(root, fmt="latex", selection="oracle", plots=False)
    assert r"\subsection{Model selection: Test-domain validation (oracle)}" in latex
    assert r"All datasets (Test-domain validation (oracle))" in latex and r"40.0 $\pm$ 5.8" in latex


def test_leave_one_out_table_where_pair_runs_exist(tmp_path):
    root = _sweep(tmp_path / "runs", pairs=True)
    text, _ = write_report(root, plots=False)
    loo = next(s for s in ("\n" + text).split("\n## ") if s.startswith("Leave-one-domain-out"))
    # env 0, trial 0: validation 0.2 at epoch 0, 0.6 at epoch 1 -> epoch 1, test accuracy 0.6 - 0.3
    assert "| ERM | full | 30.0 | – | – |" in loo


def test_csv_has_every_method(tmp_path):
    root = _sweep(tmp_path / "runs")
    assert main(["report", str(root), "--format", "csv", "--out", str(tmp_path / "r"), "--se", "domainbed"]) == 0
    tidy = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert set(tidy["method"]) == {"training_domain", "oracle"}
    assert set(tidy["se_convention"]) == {"SE = std(ddof=0)/√n, DomainBed's collect_results convention"}
    assert set(pd.read_csv(tmp_path / "r" / "selected.csv")["method"]) == {"training_domain", "oracle"}


def test_compact_cells_need_every_dataset_for_the_overall_mean():
    summary = pd.DataFrame([
        {"dataset": "a", "algorithm": "ERM", "setting": "full", "acc:Avg": 60.0, "se:Avg": 1.0},
        {"dataset": "b", "algorithm": "ERM", "setting": "full", "acc:Avg": 70.0, "se:Avg": 2.0},
        {"dataset": "a", "algorithm": "CORAL", "setting": "full", "acc:Avg": 65.0, "se:Avg": 1.0},
    ])
    header, rows = compact_cells(summary)
    assert header == ["algorithm", "setting", "a", "b", "Avg"]
    assert rows == [["ERM", "full", "60.0 ± 1.0", "70.0 ± 2.0", "65.0"], ["CORAL", "full", "65.0 ± 1.0", "–", "–"]]


def test_each_gradsamp_run_is_paired_with_the_skip_run_of_its_own_settings(tmp_path):
    """Two skip controls differing in buffers/guard; each tensor setting must meet its own one."""
    acc = {("tensor", "keep"): 0.6, ("skip", "keep"): 0.5, ("tensor", "extrapolate"): 0.7,
           ("skip", "extrapolate"): 0.4, ("tensor", "guarded"): 0.9, ("none", "keep"): 0.55}
    settings = {"keep": {}, "extrapolate": {"buffers": "extrapolate", "guard": True}, "guarded": {"guard": True}}
    for (sampler, setting), a in acc.items():
        for trial in range(2):
            rf.write_run(tmp_path / f"{sampler}-{setting}-{trial}", test_envs=[0], trial_seed=trial, sampler=sampler,
                         gradsamp=settings[setting],
                         epochs=[{"metrics": M(env0_in_acc=a + 0.01 * trial), "train_J": 1, "eval_J": 1}])
    _, summary = build(tmp_path, "last")
    rows = {(r.sampler, r.setting): r for r in summary.itertuples()}
    keys = {k: r.config_key for k, r in rows.items()}
    tensor_keep = next(r for (s, st), r in rows.items() if s == "tensor" and "extrapolate" not in st and
                       "guard=True" not in st)
    tensor_extra = next(r for (s, st), r in rows.items() if s == "tensor" and "extrapolate" in st)
    tensor_guard = next(r for (s, st), r in rows.items() if s == "tensor" and "guard=True" in st and
                        "extrapolate" not in st)
    skip_keep = next(r for (s, st), r in rows.items() if s == "skip" and "extrapolate" not in st)
    skip_extra = next(r for (s, st), r in rows.items() if s == "skip" and "extrapolate" in st)
    assert tensor_keep.control_key == skip_keep.config_key and tensor_extra.control_key == skip_extra.config_key
    assert tensor_keep.delta_control == pytest.approx(10.0) and tensor_extra.delta_control == pytest.approx(30.0)
    assert pd.isna(tensor_guard.control_key) and tensor_guard.verdict.startswith("no exact control")
    assert len(set(keys.values())) == 6
