"""Round 3 (issue 21, item 12): messages that were not one stderr line: a resume error after the energy
warning, torch's two-line shape mismatch cut mid-word, and sbatch's four lines with the wrong one quoted."""

from __future__ import annotations

import os
import stat

import pytest
import torch
import yaml

from dagrad.run.state import state_problem as _state_problem
from dagrad.launch.slurm import fatal_line
from helpers.faultinject import TINY

SBATCH_SAYS = ("sbatch: warning: can't honor --ntasks-per-node set to 1\n"
               "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
               "sbatch: info: see the cluster's documentation for the limits\n"
               "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy\n")


def test_a_checkpoint_that_does_not_fit_the_model_is_one_line(cli, tmp_path):
    """The energy meter's warning (built before the checkpoint is read) does not come before the error, and
    the error names the first mismatch in whole words (checked before torch's loader sees the state)."""
    assert cli("train", "--quiet", *TINY, "epochs=2", "--out", "run").code == 0
    path = tmp_path / "run" / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    name = next(k for k, v in payload["algorithm"].items() if v.dim() == 4)
    payload["algorithm"][name] = torch.zeros(3, *payload["algorithm"][name].shape[1:])
    torch.save(payload, path)
    line = cli("train", "--quiet", "--resume", "--out", "run").assert_one_line_error(
        f"its model entry '{name}' has shape (3, ", "this run's model (", "--restart --out run")
    assert "Error(s) in loading" not in line and "torch.Size" not in line


def test_torch_refusals_become_one_line():
    message = ("Error(s) in loading state_dict for ERM:\n\tsize mismatch for a.weight: copying a param with shape "
               "torch.Size([3, 1]) from checkpoint, the shape in current model is torch.Size([8, 1]).\n\t"
               "size mismatch for b.bias: copying a param with shape torch.Size([3]) from checkpoint, the shape in "
               "current model is torch.Size([8]).")
    assert _state_problem(RuntimeError(message)) == (
        "size mismatch for a.weight: copying a param with shape torch.Size([3, 1]) from checkpoint, the shape in "
        "current model is torch.Size([8, 1]); and 1 more")
    long = "size mismatch for " + "word " * 80
    shown = _state_problem(RuntimeError(long))
    assert len(shown) <= 205 and shown.endswith("word ...")


def test_the_fatal_line_of_sbatch_is_the_one_quoted():
    assert fatal_line(SBATCH_SAYS) == "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy"
    assert fatal_line("just one line\n") == "just one line"


@pytest.fixture
def refusing_sbatch(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\ncat >&2 <<'EOF'\n" + SBATCH_SAYS + "EOF\nexit 1\n")
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_refused_submission_prints_only_the_fatal_line(cli, tmp_path, refusing_sbatch):
    pytest.importorskip("submitit")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"epochs": 1}],
                                                      "grid": {"trial_seeds": 1}, "launcher": {"name": "slurm"}}))
    result = cli("sweep", "-c", "s.yaml", "--out", "out")
    assert result.code == 2, result.err
    errors = [line for line in result.err_lines if "sbatch" in line or "error" in line]
    assert errors == ["dagrad: error: the cluster refused the sweep's jobs (nothing was submitted): sbatch: error: "
                      "Batch job submission failed: Job violates accounting/QOS policy"], result.err
