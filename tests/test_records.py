"""Record files: atomic rewrite, JSON-safe values, resume truncation, clear errors on damage."""

from __future__ import annotations

import json

import pytest

from dagrad.utils.errors import RecordsError
from dagrad.records.files import RecordFile, find_runs, read_records, split_run


def test_append_rewrites_whole_lines_and_cleans_non_finite(tmp_path):
    records = RecordFile(tmp_path / "run" / "records.jsonl")
    records.append({"type": "header", "x": 1})
    records.append({"type": "epoch", "epoch": 0, "loss": float("nan"), "flops": float("inf")})
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["header", "epoch"]
    assert json.loads(lines[1])["loss"] is None and json.loads(lines[1])["flops"] is None
    assert not list((tmp_path / "run").glob(".*tmp"))  # no temporary file left behind


def epoch_line(epoch: int) -> dict:
    """The least an epoch record holds (record_schema checks it)."""
    return {"type": "epoch", "epoch": epoch, "step": epoch, "updates": epoch, "metrics": {}}


def test_resume_keeps_header_and_earlier_epochs(tmp_path):
    path = tmp_path / "records.jsonl"
    records = RecordFile(path)
    for line in [{"type": "header"}] + [epoch_line(e) for e in range(4)]:
        records.append(line)
    resumed = RecordFile.resume(path, next_epoch=2)
    assert [line.get("epoch") for line in resumed.lines] == [None, 0, 1]
    header, epochs, summary = split_run(resumed.lines)
    assert header == {"type": "header"} and len(epochs) == 2 and summary is None


def test_damaged_files_name_the_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"type": "header"}\n{"type": "epoch", "epo\n')
    with pytest.raises(RecordsError, match=r"records.jsonl:2: not a JSON record"):
        read_records(path)
    path.write_text('[1, 2]\n')
    with pytest.raises(RecordsError, match="must be an object with a 'type'"):
        read_records(path)
    path.write_text(json.dumps(epoch_line(0)) + "\n")
    with pytest.raises(RecordsError, match="no header line"):
        RecordFile.resume(path, 1)
    with pytest.raises(RecordsError, match="no record file"):
        read_records(tmp_path / "missing.jsonl")


def test_find_runs(tmp_path):
    for name in ("a", "b/c"):
        RecordFile(tmp_path / name / "records.jsonl").append({"type": "header"})
    assert [p.parent.name for p in find_runs(tmp_path)] == ["a", "c"]
