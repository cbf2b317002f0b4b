"""Reports beside gross energy: dynamic energy for runs with an idle baseline, and the numerics used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import recordsfactory as rf

from dagrad.analysis.tables import build, numerics_line, tables_markdown, tidy


def _edit_header(path: Path, **fields) -> None:
    lines = [json.loads(t) for t in path.read_text().splitlines()]
    lines[0].update(fields)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


IDLE = {"seconds": 5.0, "components": {"cpu": {"watts": 2.0, "source": "estimated:cpu-time"}}}


def _runs(tmp_path: Path, idle: bool, precision: str = "torch_default") -> Path:
    for trial in range(2):
        epochs = [{"metrics": rf.metrics(env0_in_acc=0.5 + 0.1 * trial), "train_J": 10.0 + trial, "eval_J": 4.0}
                  for _ in range(3)]
        path = rf.write_run(tmp_path / f"run{trial}", test_envs=[0], trial_seed=trial, epochs=epochs)
        _edit_header(path, idle_power=IDLE if idle else None,
                     numerics={"precision": precision, "deterministic": trial == 0})
    return tmp_path


def test_dynamic_energy_is_gross_minus_idle_power_times_seconds(tmp_path):
    selected, summary = build(_runs(tmp_path, idle=True), "last")
    row = summary.iloc[0]
    # each run: 3 epochs x (train + eval), every window 1 s long (recordsfactory) -> 6 s x 2 W = 12 J idle
    gross = [3 * (10.0 + t) + 3 * 4.0 for t in range(2)]
    assert row["train_eval_J"] == pytest.approx(np.mean(gross))
    assert row["dynamic_J"] == pytest.approx(np.mean([g - 12.0 for g in gross]))
    text = tables_markdown(summary, "last", numerics_line(selected))
    assert "train + eval gross (J)" in text and "train + eval dynamic (J)" in text and "Dynamic energy = gross − idle power" in text
    assert "train_eval_dynamic_energy_J" in set(tidy(summary)["quantity"])


def test_without_a_baseline_only_gross_energy_is_shown(tmp_path):
    selected, summary = build(_runs(tmp_path, idle=False), "last")
    assert np.isnan(summary.iloc[0]["dynamic_J"])
    text = tables_markdown(summary, "last", numerics_line(selected))
    assert "dynamic" not in text and "| train + eval (J) |" in text


def test_the_report_states_the_precision_and_determinism_of_the_runs(tmp_path):
    selected, _ = build(_runs(tmp_path, idle=False, precision="bf16"), "last")
    line = numerics_line(selected)
    assert "bf16 (autocast to bfloat16" in line
    assert "deterministic cuDNN: 1 run(s)" in line and "non-deterministic (cudnn.benchmark) cuDNN: 1 run(s)" in line
