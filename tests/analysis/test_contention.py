"""The report's rule for comparisons whose arms ran under different contention, from recorded conditions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import recordsfactory as rf

from dagrad.analysis import contention
from dagrad.analysis.tables import build, tables_markdown, tidy


def conditions(other_pct: float, own_cpu_s: float = 1.0) -> dict:
    """A training window on a 2-CPU machine over 10 s whose other processes used `other_pct` % of it."""
    capacity = 20.0
    return {"machine_cpu_s": own_cpu_s + capacity * other_pct / 100, "capacity_cpu_s": capacity,
            "other_cpu_share": other_pct / 100, "load_avg_1m": 1.0}


def _runs(tmp_path: Path, busy: dict[tuple[str, int], float]) -> Path:
    for setting in ("none", "tensor", "skip"):
        for trial in range(2):
            epochs = [{"metrics": rf.metrics(env0_in_acc=0.5 + 0.1 * trial), "train_J": 10.0, "eval_J": 1.0,
                       "kind": "sampled" if setting == "tensor" and i == 1 else "train",
                       "conditions": conditions(busy.get((setting, trial), 5.0))} for i in range(3)]
            rf.write_run(tmp_path / f"{setting}-{trial}", test_envs=[0], trial_seed=trial, sampler=setting,
                         epochs=epochs)
    return tmp_path


def test_a_runs_share_is_machine_time_less_its_own_over_capacity():
    epochs = [{"energy": {"train": {"cpu_seconds": 2.0, "conditions": {"machine_cpu_s": 6.0, "capacity_cpu_s": 8.0}}}},
              {"energy": {"train": {"cpu_seconds": 1.0, "conditions": {"machine_cpu_s": 1.0, "capacity_cpu_s": 8.0}}}}]
    assert contention.other_cpu_pct(epochs) == pytest.approx(100 * (7.0 - 3.0) / 16.0)
    epochs.append({"energy": {"train": {"cpu_seconds": 1.0}}})  # a window without conditions: unknown
    assert np.isnan(contention.other_cpu_pct(epochs))


def test_arms_more_than_ten_points_apart_are_marked(tmp_path):
    _, summary = build(_runs(tmp_path, {("tensor", 1): 40.0}), "last")
    tensor = summary[summary.sampler == "tensor"].iloc[0]
    assert tensor.contention_flag and tensor.contention_gap == pytest.approx(35.0)
    assert tensor.contention_pct == pytest.approx((5.0 + 40.0) / 2)
    assert not summary[summary.sampler != "tensor"].contention_flag.any()  # full and skip ran alike
    table = tables_markdown(summary, "last")
    assert "| contention |" in table and f"22 % {contention.UNEQUAL}" in table
    assert "differs by up to 35 points" in table and contention.RULE in table
    assert tidy(summary).query("quantity == 'other_cpu_share_pct'")["flag"].tolist().count(contention.UNEQUAL) == 1


def test_arms_within_ten_points_are_not_marked(tmp_path):
    _, summary = build(_runs(tmp_path, {("tensor", 1): 15.0, ("skip", 0): 0.0}), "last")
    assert not summary.contention_flag.any()
    assert summary[summary.sampler == "tensor"].iloc[0].contention_gap == pytest.approx(10.0)
    assert contention.UNEQUAL not in tables_markdown(summary, "last").split("Contention:")[0]


def test_runs_without_conditions_show_no_contention(tmp_path):
    for setting in ("none", "tensor"):
        rf.write_run(tmp_path / setting, test_envs=[0], sampler=setting,
                     epochs=[{"metrics": rf.metrics(), "train_J": 1.0, "eval_J": 1.0}])
    _, summary = build(tmp_path, "last")
    assert not summary.contention_flag.any() and summary.contention_pct.isna().all()
    assert "Contention:" not in tables_markdown(summary, "last")


def test_the_demo_line_leads_with_updates_saved_when_estimated_energy_ran_busy(tmp_path):
    _, busy = build(_runs(tmp_path / "busy", {("tensor", 1): 40.0}), "last")
    line = contention.busy_line(busy)
    assert line.startswith("Updates saved: tensor 33 %. ") and "busy machine" in line and "up to 22 %" in line
    _, quiet = build(_runs(tmp_path / "quiet", {}), "last")
    assert contention.busy_line(quiet) is None  # 5 % everywhere: quiet
    for path in (tmp_path / "quiet").rglob("records.jsonl"):  # measured energy: no line, however busy
        path.write_text(path.read_text().replace("estimated:cpu-time", "measured:rapl")
                        .replace('"other_cpu_share": 0.05', '"other_cpu_share": 0.9'))
    _, measured = build(tmp_path / "quiet", "last")
    assert contention.busy_line(measured) is None
