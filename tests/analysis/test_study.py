"""The GradSamp study view on hand-written records with known paired differences: exact cells, p-values
(checked against scipy's own paired t-test), the Holm correction, verdicts, and the files it writes."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import recordsfactory as rf

from dagrad.analysis.runs import read_runs
from dagrad.analysis.study import BEATS, LOSES, NO_CONTROL, UNCLEAR, build_study, holm, paired_test
from dagrad.cli import main
from dagrad.utils.errors import ConfigError, DataError

SEEDS = range(5)
FULL = [60.0, 61.0, 62.0, 63.0, 64.0]
SKIP_EVERY2 = [50.0, 52.0, 54.0, 56.0, 58.0]
SKIP_RANDOM = [51.0, 53.0, 55.0, 57.0, 59.0]
RANDOM = {"schedule": "random", "schedule_options": {"probability": 0.3}}
#: (cell name, sampler, GradSamp settings, control accuracies, paired differences against the control)
CELLS = [
    ("tensor1", "tensor", {}, SKIP_EVERY2, [2.0, 2.5, 1.5, 2.2, 1.8]),
    ("tensor05", "tensor", {"sampler_options": {"scale": 0.5}}, SKIP_EVERY2, [-1.0, -1.2, -0.8, -1.1, -0.9]),
    ("element", "element", {}, SKIP_EVERY2, [1.0, 0.0, 1.5, 0.3, 1.1]),  # raw p 0.047, Holm 0.094
    ("ggd", "ggd", {}, SKIP_EVERY2, [0.5, -0.5, 0.3, -0.3, 0.0]),
    ("tensor_random", "tensor", RANDOM, SKIP_RANDOM, [0.1, 0.2, 0.3, 0.2, 0.1]),
    ("extrapolate5", "extrapolate", {"schedule_options": {"start": 1, "every": 5}}, SKIP_EVERY2, [1.0] * 5),
]


def _run(root: Path, name: str, seed: int, acc: float, sampler: str = "none", gradsamp: dict | None = None) -> None:
    sampled = sampler != "none"
    epochs = [{"metrics": rf.metrics(env0_in_acc=0.1, env1_out_acc=0.4, env2_out_acc=0.4), "train_J": 100.0,
               "eval_J": 10.0},
              {"metrics": rf.metrics(env0_in_acc=acc / 100, env1_out_acc=0.6, env2_out_acc=0.6),
               "train_J": 2.0 if sampled else 100.0, "eval_J": 10.0, "kind": "sampled" if sampled else "train"}]
    rf.write_run(root / f"{name}-{seed}", test_envs=[0], trial_seed=seed, sampler=sampler, epochs=epochs,
                 gradsamp=gradsamp)


def write_study(root: Path) -> Path:
    for seed in SEEDS:
        _run(root, "full", seed, FULL[seed])
        _run(root, "skip", seed, SKIP_EVERY2[seed], "skip")
        _run(root, "skip_random", seed, SKIP_RANDOM[seed], "skip", RANDOM)
        for name, sampler, settings, control, diffs in CELLS:
            _run(root, name, seed, control[seed] + diffs[seed], sampler, settings)
    return root


def test_cells_differences_p_values_holm_and_verdicts_are_exact(tmp_path):
    study = build_study(read_runs(write_study(tmp_path)))
    cells = study.cells.set_index(["reading", "schedule"])
    assert list(study.cells.algorithm.unique()) == ["ERM"]
    assert set(cells.index) == {("tensor α=1", "every 2 from 1"), ("tensor α=0.5", "every 2 from 1"),
                                ("element α=1", "every 2 from 1"), ("ggd α=1", "every 2 from 1"),
                                ("tensor α=1", "random p=0.3"), ("extrapolate α=1", "every 5 from 1")}
    # the rows in the study's order: paper readings, tensor's α ascending, periodic before random
    assert list(zip(study.cells.reading, study.cells.schedule))[:3] == [
        ("tensor α=0.5", "every 2 from 1"), ("tensor α=1", "every 2 from 1"), ("tensor α=1", "random p=0.3")]
    keys = {"tensor1": ("tensor α=1", "every 2 from 1"), "tensor05": ("tensor α=0.5", "every 2 from 1"),
            "element": ("element α=1", "every 2 from 1"), "ggd": ("ggd α=1", "every 2 from 1"),
            "tensor_random": ("tensor α=1", "random p=0.3")}
    expected_p = {}
    for name, _, _, control, diffs in CELLS[:5]:
        row = cells.loc[keys[name]]
        treated = [c + d for c, d in zip(control, diffs)]
        scipy_test = stats.ttest_rel(treated, control)
        expected_p[name] = scipy_test.pvalue
        assert row.n == 5 and row.control_diffs == pytest.approx(diffs, abs=1e-9)
        assert row.delta_control == pytest.approx(np.mean(diffs))
        assert row.delta_control_se == pytest.approx(np.std(diffs, ddof=1) / math.sqrt(5))
        assert row.t == pytest.approx(scipy_test.statistic) and row.p == pytest.approx(scipy_test.pvalue)
        full = [t - f for t, f in zip(treated, FULL)]
        assert row.delta_full == pytest.approx(np.mean(full))
        assert row.delta_full_se == pytest.approx(np.std(full, ddof=1) / math.sqrt(5))
        assert row.saving_train_pct == pytest.approx(100 * (1 - 102 / 200))
        assert row.saving_updates_pct == pytest.approx(50.0)
    # Holm by hand over the 5 tested cells (the cell without a control is not a test)
    order = sorted(expected_p, key=expected_p.get)
    running, adjusted = 0.0, {}
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (5 - rank) * expected_p[name]))
        adjusted[name] = running
    assert study.tests == 5
    for name, p in adjusted.items():
        assert cells.loc[keys[name]].p_holm == pytest.approx(p)
    verdicts = {name: cells.loc[key].verdict for name, key in keys.items()}
    assert verdicts == {"tensor1": BEATS, "tensor05": LOSES, "element": UNCLEAR, "ggd": UNCLEAR,
                        "tensor_random": BEATS}
    element = cells.loc[keys["element"]]
    assert element.p < 0.05 < element.p_holm  # significant alone, not once 5 tests are corrected for
    lonely = cells.loc[("extrapolate α=1", "every 5 from 1")]
    assert lonely.verdict == NO_CONTROL and math.isnan(lonely.p) and math.isnan(lonely.p_holm)
    refs = study.references
    assert sorted(refs.sampler) == ["none", "skip", "skip"]
    assert set(refs[refs.sampler == "skip"].schedule) == {"every 2 from 1", "random p=0.3"}


def test_holm_and_the_paired_test_by_hand():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert paired_test([1.0]) == (pytest.approx(math.nan, nan_ok=True), pytest.approx(math.nan, nan_ok=True))
    assert paired_test([1.0, 1.0, 1.0]) == (math.inf, 0.0)  # no spread at all: certain
    assert paired_test([0.0, 0.0]) == (0.0, 1.0)


def test_cli_writes_every_format_and_the_heatmap(tmp_path, capsys):
    root = write_study(tmp_path / "runs")
    assert main(["report", str(root), "--study"]) == 0
    printed = capsys.readouterr().out
    out = root / "report"
    for name in ("study.md", "rotated_digits-study.png", "rotated_digits-study.svg"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "rotated_digits-study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / "rotated_digits-study.svg").read_text()
    text = (out / "study.md").read_text()
    assert text in printed
    assert "| ERM | tensor α=1 | 2.0 ± 0.2 ▲ |" in text and "–1.0" not in text
    assert "Holm–Bonferroni correction over all 5 tested cells" in text
    assert "training-domain validation" in text
    bar = stats.t.isf(0.05 / 10, 4)  # the first Holm step: two-sided α / 5 at 4 degrees of freedom
    assert f"called only when |t| ≥ {bar:.1f}" in text
    assert ("Best cell against its control: rotated_digits, ERM, tensor α=1, every 2 from 1 (2.0 ± 0.2 pp, beats "
            "the control); worst cell against its control: rotated_digits, ERM, tensor α=0.5, every 2 from 1 "
            "(-1.0 ± 0.1 pp, loses to the control).") in text
    assert "beats the control: 2; loses to the control: 1; no clear difference: 2." in text
    assert "| algorithm | reading | every 2 from 1 | every 5 from 1 | random p=0.3 |" in text  # periodic first
    assert main(["report", str(root), "--study", "--format", "latex", "--out", str(tmp_path / "tex")]) == 0
    latex = (tmp_path / "tex" / "study.tex").read_text()
    assert r"\toprule" in latex and r"$\alpha$=0.5" in latex and r"$\uparrow$" in latex
    assert main(["report", str(root), "--study", "--format", "csv", "--selection", "oracle",
                 "--out", str(tmp_path / "csv")]) == 0
    frame = pd.read_csv(tmp_path / "csv" / "study.csv")
    assert len(frame) == 6 and set(frame.selection) == {"oracle"} and set(frame.tests) == {5}
    row = frame[(frame.reading == "tensor α=0.5")].iloc[0]
    assert row.verdict == LOSES and row.control_diffs == "-1;-1.2;-0.8;-1.1;-0.9"


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    root = write_study(tmp_path / "runs")
    assert main(["report", str(root), "--study", "--selection", "oracle", "--selection", "last"]) == 2
    assert "--study uses one model selection" in capsys.readouterr().err
    assert main(["report", str(root), "--study", "--alpha", "1.5"]) == 2
    assert "--alpha" in capsys.readouterr().err
    plain = tmp_path / "plain"
    for seed in SEEDS:
        _run(plain, "full", seed, FULL[seed])
    with pytest.raises(DataError, match="no GradSamp runs to study"):
        build_study(read_runs(plain))
    with pytest.raises(ConfigError, match="--se"):
        build_study(read_runs(root), se="wrong")


def test_python_api_returns_the_cells_text_and_figures(tmp_path):
    import dagrad

    st = dagrad.study(write_study(tmp_path / "runs"), alpha=0.01)
    assert st.tests == 5 and st.alpha == 0.01 and set(st.figures) == {"rotated_digits-study"}
    assert "at α = 0.01" in st.text and "![" not in st.text  # nothing written, so nothing to link
    buf = io.BytesIO()
    st.figures["rotated_digits-study"].savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    assert len(st.cells) == 6 and "verdict" in st.cells
