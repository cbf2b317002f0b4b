"""The shipped GradSamp study sweeps (issue 16) are valid: a dry run lists their jobs without any data present,
and their grids hold exactly the cells, controls and trimming their comments describe."""

from __future__ import annotations

from collections import Counter

import pytest

from dagrad.cli import main
from dagrad.launch import plan

READINGS = {"tensor", "tensor_a0.5", "element", "ggd", "extrapolate", "shrink", "ema"}


@pytest.mark.parametrize("name, jobs", [("study_digits", 230), ("study_digits_stroke", 30), ("study_pacs", 1400),
                                        ("study_office_home", 1400)])
def test_a_dry_run_lists_every_job_without_data_and_writes_nothing(tmp_path, monkeypatch, capsys, name, jobs):
    monkeypatch.chdir(tmp_path)  # the DomainBed configs' data root ("data") does not exist here
    code = main(["sweep", "-c", f"sweeps/{name}", "--out", "out", "--dry-run"])
    printed, said = capsys.readouterr()
    if name.startswith("study_digits"):  # embedded data: nothing to miss
        assert code == 0, said
    else:  # the listing comes first, then the one thing every job would stop at
        assert code == 2 and "not found at data/" in said and f"({jobs} of {jobs} job(s) would fail on it)" in said
    assert f"sweep {name}: {jobs} jobs" in printed and printed.count(" new ") == jobs
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def _cells(name: str, tmp_path) -> Counter:
    _, jobs, _ = plan(f"sweeps/{name}", tmp_path)
    out = Counter()
    for job in jobs:
        c, exp = job.experiment.cfg, job.experiment
        schedule = "-" if c.gradsamp.sampler == "none" else \
            f"{c.gradsamp.schedule}:{sorted(exp.gradsamp.schedule.options.items())}"
        out[(c.algorithm.name, c.averaging.name, c.precision, c.gradsamp.sampler,
             exp.gradsamp.sampler.options.get("scale") if exp.gradsamp else None, schedule)] += 1
    return out


def test_study_digits_is_the_trimmed_matrix_with_a_control_and_full_training_for_every_cell(tmp_path):
    cells = _cells("study_digits", tmp_path)
    assert set(cells.values()) == {5}  # every configuration over 5 trial seeds
    schedules = {s for (*_, s) in cells if s != "-"}
    assert len(schedules) == 4
    erm = [k for k in cells if k[:2] == ("erm", "none") and k[3] not in ("none", "skip")]
    assert len(erm) == 5 * 4 + 2  # ERM: the paper's readings (tensor at alpha 0.5 and 1) at every schedule,
    assert {k[3] for k in erm if k[5].startswith("periodic:[('every', 3)")} == READINGS - {"tensor_a0.5"} | {"tensor"}
    assert sum(k[3] in ("shrink", "ema") for k in erm) == 2  # dagrad's own at the default schedule only
    for algorithm, averaging, readings in (("coral", "none", 6), ("dann", "none", 6), ("erm", "swad", 1)):
        own = [k for k in cells if k[:2] == (algorithm, averaging) and k[3] not in ("none", "skip")]
        assert len(own) == readings and {k[5] for k in own} == {"periodic:[('every', 3), ('start', 3)]"}
    for key in cells:  # each cell's skip control (same schedule) and full training are in the grid
        if key[3] not in ("none", "skip"):
            assert (*key[:3], "skip", None, key[5]) in cells and (*key[:3], "none", None, "-") in cells
    assert len(cells) == 46 and {k[2] for k in cells} == {"torch_default"}


def test_the_gpu_studies_add_a_precision_axis_and_run_swad_under_its_own_protocol(tmp_path):
    _, jobs, _ = plan("sweeps/study_pacs", tmp_path)
    precisions = Counter((j.experiment.cfg.precision, j.experiment.cfg.channels_last) for j in jobs)
    assert set(precisions) == {("fp32_strict", False), ("tf32", False), ("bf16", True)}
    assert precisions[("bf16", True)] == precisions[("fp32_strict", False)] == 12 * 4 * 5  # full, skip, tensor x 4
    swad = [j.experiment.cfg for j in jobs if j.experiment.cfg.averaging.name == "swad"]
    assert swad and all((c.epochs, c.steps_per_epoch, c.seed, c.eval_mode, c.data.val_augment)
                        == (50, 100, 0, "fast", False) for c in swad)
    others = [j.experiment.cfg for j in jobs if j.experiment.cfg.averaging.name == "none"]
    assert all((c.epochs, c.steps_per_epoch, c.data.name) == (17, 300, "pacs") for c in others)
    assert {tuple(j.experiment.cfg.data.test_envs) for j in jobs} == {(0,), (1,), (2,), (3,)}
