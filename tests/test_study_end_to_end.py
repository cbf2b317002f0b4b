"""A tiny GradSamp study (2 trial seeds, 3 epochs, two readings x two schedules with their skip controls and
full training) runs end to end through `dagrad sweep`, and `dagrad report --study` reads it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from dagrad.cli import main

TINY = {"data": {"name": "rotated_digits", "test_envs": [5], "image_size": 12, "batch_size": 8,
                 "eval_batch_size": 512},
        "network": {"name": "digits_cnn", "options": {"width": 8}}, "epochs": 3, "steps_per_epoch": 3}


@pytest.mark.slow
def test_a_tiny_study_runs_and_reports(tmp_path, capsys):
    sweep = tmp_path / "study.yaml"
    sweep.write_text(yaml.safe_dump({"name": "tiny_study", "base": [TINY], "grid": {
        "algorithms": ["erm"],
        "gradsamp": {"none": {"sampler": "none"}, "skip": {"sampler": "skip"}, "tensor": {"sampler": "tensor"},
                     "ema": {"sampler": "ema"}},
        "variants": {"schedule": {
            "every2": {"gradsamp.schedule": "periodic", "gradsamp.schedule_options": {"start": 2, "every": 2}},
            "random": {"gradsamp.schedule": "random", "gradsamp.schedule_options": {"probability": 0.9}}}},
        "trial_seeds": 2}}))
    out = tmp_path / "runs"
    assert main(["sweep", "-c", str(sweep), "--out", str(out), "--workers", "2"]) == 0
    assert len(list(out.glob("*/done"))) == 14  # (full + 2 schedules x (skip, tensor, ema)) x 2 seeds
    capsys.readouterr()
    assert main(["report", str(out), "--study", "--format", "csv"]) == 0
    cells = pd.read_csv(out / "report" / "study.csv")
    assert sorted(zip(cells.reading, cells.schedule)) == [("ema α=1", "every 2"), ("ema α=1", "random p=0.9"),
                                                          ("tensor α=1", "every 2"), ("tensor α=1", "random p=0.9")]
    assert set(cells.n) == {2} and set(cells.tests) == {4} and cells.p_holm.notna().all()
    assert cells.saving_updates_pct.gt(0).all()  # the sampled epoch did no updates
    assert set(cells.verdict) <= {"beats the control", "loses to the control", "no clear difference"}
    assert main(["report", str(out), "--study"]) == 0
    text = (out / "report" / "study.md").read_text()
    assert "## GradSamp study: rotated_digits" in text and "Holm–Bonferroni correction over all 4 tested cells" in text
    assert (out / "report" / "rotated_digits-study.png").stat().st_size > 0
    assert (out / "report" / "rotated_digits-study.svg").stat().st_size > 0
