"""Checkpoints from elsewhere never run code, and records always agree with the checkpoint."""

from __future__ import annotations

import json
import os

import pytest
import torch
import yaml

from dagrad.run.checkpoint import load_checkpoint, save_checkpoint
from dagrad.run.epochs import EpochKind
from dagrad.utils.errors import CheckpointError
from dagrad.records.files import read_records, split_run
from helpers.faultinject import TINY, snapshot


class _Payload:
    """What a crafted pickle looks like: unpickling it calls os.system."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _malicious(path, marker):
    torch.save({"format": 2, "config_hash": "x", "evil": _Payload(f"touch {marker}")}, path)


def test_a_malicious_checkpoint_is_refused_without_running(cli, tmp_path):
    assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    marker = tmp_path / "pwned"
    _malicious(tmp_path / "run" / "checkpoint.pt", marker)
    before = snapshot(tmp_path)
    line = cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=1").assert_ends_with_error(
        "run/checkpoint.pt is not a dagrad checkpoint (it holds objects other than tensors and plain data; "
        "nothing in it was run)", "--restart --out run")
    assert not marker.exists(), line
    assert snapshot(tmp_path) == before


def test_a_sweep_relaunch_does_not_run_a_planted_checkpoint(cli, tmp_path):
    """Sweeps resume checkpoints on their own: a planted one is moved aside, never executed."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"epochs": 1, "steps_per_epoch": 2,
                                                                            "data": {"image_size": 12}}]}))
    assert cli("sweep", "-c", "s.yaml", "--out", "out", "--launcher", "local").code == 0
    job = next(p for p in (tmp_path / "out").iterdir() if (p / "done").exists())
    (job / "done").unlink()
    marker = tmp_path / "pwned"
    _malicious(job / "checkpoint.pt", marker)
    assert cli("sweep", "-c", "s.yaml", "--out", "out", "--launcher", "local").code == 0
    assert not marker.exists()
    moved = list((tmp_path / "out").glob(f"{job.name}.broken-*"))
    assert len(moved) == 1 and "not a dagrad checkpoint" in (moved[0] / "why-moved.txt").read_text()


def test_load_checkpoint_uses_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    _malicious(tmp_path / "c.pt", marker)
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain data"):
        load_checkpoint(tmp_path / "c.pt", "x")
    assert not marker.exists()


def test_saving_refuses_what_weights_only_would_refuse(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint.averager.kind is a dagrad.run.epochs.EpochKind"):
        save_checkpoint(tmp_path / "c.pt", {"averager": {"kind": EpochKind.TRAIN}})
    assert not (tmp_path / "c.pt").exists() and list(tmp_path.iterdir()) == []


def _result(path):
    """What a run computed (energy and time vary between two runs of the same thing, so they are left out)."""
    _, epochs, summary = split_run(read_records(path))
    return [(r["epoch"], r["metrics"]) for r in epochs], {k: v for k, v in (summary or {}).items()
                                                          if not k.endswith("_energy")}


def test_records_cut_short_are_rebuilt_from_the_checkpoint(cli, tmp_path):
    """The review's case: keep the header and epoch 0, then --resume. Before: exit 0 with epoch 0's accuracy
    as the result. Now: the records are rebuilt from the checkpoint and equal an uninterrupted run's."""
    args = ["--quiet", *TINY, "epochs=4"]
    assert cli("train", "--out", "full", *args).code == 0
    assert cli("train", "--out", "cut", *args).code == 0
    records = tmp_path / "cut" / "records.jsonl"
    records.write_text("".join(records.read_text().splitlines(keepends=True)[:2]))  # header + epoch 0
    resumed = cli("train", "--resume", "--out", "cut", *args)
    assert resumed.code == 0, resumed.err
    assert "is cut short (it holds epochs 0-0); the checkpoint holds epochs 0-3, so the records are rebuilt" \
        in resumed.err
    assert _result(records) == _result(tmp_path / "full" / "records.jsonl")
    final = _result(records)[0][-1][1]
    assert f"OOD accuracy {100 * final['env5_in_acc']:.1f} %" in resumed.out


def test_edited_or_missing_records_are_rebuilt_and_the_edit_kept(cli, tmp_path):
    args = ["--quiet", *TINY, "epochs=2"]
    assert cli("train", "--out", "run", *args).code == 0
    records = tmp_path / "run" / "records.jsonl"
    good = _result(records)
    lines = [json.loads(x) for x in records.read_text().splitlines()]
    lines[1]["metrics"]["env5_in_acc"] = 0.99
    edited = "".join(json.dumps(x) + "\n" for x in lines)
    records.write_text(edited)
    resumed = cli("train", "--resume", "--out", "run", *args)
    assert resumed.code == 0 and "differs from the checkpoint (kept as records.jsonl.disagreed-" in resumed.err
    assert _result(records) == good
    assert [p.read_text() for p in (tmp_path / "run").glob("records.jsonl.disagreed-*")] == [edited]
    records.unlink()
    resumed = cli("train", "--resume", "--out", "run", *args)
    assert resumed.code == 0 and "records.jsonl is missing" in resumed.err
    assert _result(records) == good


def test_a_checkpoint_without_its_fields_is_one_line(cli, tmp_path):
    assert cli("train", "--quiet", "--out", "run", *TINY, "epochs=1").code == 0
    torch.save({"format": 2, "config_hash": "x"}, tmp_path / "run" / "checkpoint.pt")
    cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=1").assert_ends_with_error(
        "lacks a valid 'epoch' entry")
