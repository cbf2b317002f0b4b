"""A checkpoint's epoch must agree with the records it carries; its model and optimizer states must fit
the run's model (keys and shapes) and hold finite weights. Otherwise: one line, exit 2, nothing trained."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from dagrad.run.checkpoint_checks import check_epoch, check_optimizer, check_state
from dagrad.utils.errors import CheckpointError

HEADER = {"type": "header"}


def records(n: int, updates_per_epoch: int = 3) -> list[dict]:
    return [HEADER] + [{"type": "epoch", "epoch": e, "updates": updates_per_epoch * (e + 1)} for e in range(n)]


def payload(epoch: int, lines: list[dict], updates: int | None = None) -> dict:
    last = [line for line in lines if line["type"] == "epoch"]
    return {"epoch": epoch, "records": lines, "updates": updates if updates is not None else
            (last[-1]["updates"] if last else 0)}


@pytest.mark.parametrize("epoch, lines, message", [
    (99, records(2), "its epoch 99 is outside this run's 0..4"),
    (-1, records(2), "its epoch -1 is outside this run's 0..4"),
    (3, records(2), "its epoch is 3 but its copy of the records holds epochs 0..1 \\(2 line"),
    (1, records(2), "its epoch is 1 but its copy of the records holds epochs 0..1"),
    (2, [HEADER] + [{"type": "epoch", "epoch": e, "updates": 3} for e in (0, 0)], "holds epochs 0..0"),
    (2, records(2)[1:], "has no header line"),
])
def test_an_epoch_that_disagrees_with_the_records_is_refused(tmp_path, epoch, lines, message):
    with pytest.raises(CheckpointError, match=message) as caught:
        check_epoch(payload(epoch, lines), tmp_path / "checkpoint.pt", 4)
    assert "\n" not in str(caught.value) and "--restart" in str(caught.value)


def test_agreeing_checkpoints_pass(tmp_path):
    check_epoch(payload(2, records(2)), tmp_path / "c.pt", 4)
    check_epoch(payload(0, records(0)), tmp_path / "c.pt", 4)
    with pytest.raises(CheckpointError, match="counts 5 updates but its records end at 6"):
        check_epoch(payload(2, records(2), updates=5), tmp_path / "c.pt", 4)


def model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_model_states_must_fit(tmp_path):
    model, _ = model_and_optimizer()
    path = tmp_path / "checkpoint.pt"
    check_state(model.state_dict(), model.state_dict(), path, "model")
    wrong = {**model.state_dict(), "0.weight": torch.zeros(3, 5)}
    with pytest.raises(CheckpointError, match=r"entry '0.weight' has shape \(3, 5\), this run's model \(3, 4\)"):
        check_state(wrong, model.state_dict(), path, "model")
    missing = {k: v for k, v in model.state_dict().items() if k != "0.bias"}
    with pytest.raises(CheckpointError, match="lacks entry '0.bias'"):
        check_state(missing, model.state_dict(), path, "model")
    nan = {**model.state_dict(), "0.weight": torch.full((3, 4), math.nan)}
    with pytest.raises(CheckpointError, match="'0.weight' holds NaN or infinite values"):
        check_state(nan, model.state_dict(), path, "model")


def test_optimizer_states_must_fit(tmp_path):
    model, optimizer = model_and_optimizer()
    path = tmp_path / "checkpoint.pt"
    saved = optimizer.state_dict()
    check_optimizer(saved, optimizer, path, "adam")
    saved["state"][0]["exp_avg"] = torch.zeros(7, 7)
    with pytest.raises(CheckpointError, match=r"optimizer 'adam' entry 'exp_avg' has shape \(7, 7\), the parameter "
                                              r"\(3, 4\)"):
        check_optimizer(saved, optimizer, path, "adam")
    fewer = optimizer.state_dict()
    fewer["param_groups"][0]["params"] = fewer["param_groups"][0]["params"][:2]
    with pytest.raises(CheckpointError, match="holds 2 parameters, this run's 4"):
        check_optimizer(fewer, optimizer, path, "adam")
    with pytest.raises(CheckpointError, match="state is malformed"):
        check_optimizer({"state": 5}, optimizer, path, "adam")


# ---------------------------------------------------------------- the command line, on a real run
ARGS = ("--threads", "1", "train", "-c", "demo", "epochs=2", "steps_per_epoch=1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from dagrad.cli import main

    out = tmp_path_factory.mktemp("ckpt") / "P"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def edited(trained: Path, tmp_path: Path, edit) -> Path:
    run = tmp_path / "P"
    shutil.copytree(trained, run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    edit(payload)
    torch.save(payload, run / "checkpoint.pt")
    return run


def _first_float(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)


EDITS = {
    "epoch 99": (lambda p: p.update(epoch=99), "its epoch 99 is outside this run's 0..2"),
    "epoch -1": (lambda p: p.update(epoch=-1), "its epoch -1 is outside"),
    "epoch 1": (lambda p: p.update(epoch=1), "its epoch is 1 but its copy of the records holds epochs 0..1"),
    "model shape": (lambda p: p["algorithm"].update({_first_float(p["algorithm"]): torch.zeros(2, 2)}),
                    "has shape \\(2, 2\\), this run's model"),
    "nan weights": (lambda p: p["algorithm"][_first_float(p["algorithm"])].fill_(math.nan),
                    "holds NaN or infinite values"),
    "optimizer shape": (lambda p: [s.update({k: torch.zeros(3, 3) for k, v in s.items() if v.dim() > 0})
                                   for o in p["optimizers"].values() for s in o["state"].values()],
                        "entry '.*' has shape \\(3, 3\\), the parameter"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EDITS))
def test_resume_refuses_an_edited_checkpoint(cli, trained, tmp_path, case):
    edit, message = EDITS[case]
    run = edited(trained, tmp_path, edit)
    before = (run / "records.jsonl").read_text()
    result = cli(*ARGS, "--resume", "--out", str(run))
    assert result.code == 2
    [line] = [x for x in result.err.strip().splitlines() if "error" in x]
    assert line.startswith("dagrad: error: cannot resume from ") and "Traceback" not in result.err
    import re

    assert re.search(message, line), line
    assert (run / "records.jsonl").read_text() == before  # nothing trained, nothing rewritten
