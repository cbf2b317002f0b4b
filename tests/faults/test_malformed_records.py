"""Record files that are valid JSON but malformed: each line is checked against the record schema, a bad
file is skipped with one warning naming the file and the line, and the other runs are reported. Also an
accuracy out of [0, 1], an unknown format version and a symlinked run folder."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from dagrad.utils.errors import RecordsError
from dagrad.records.files import find_runs, read_records

HEADER = {"type": "header", "format": 2, "run_id": "r1", "config": {"data": {"name": "rotated_digits"},
          "algorithm": {"name": "erm"}}, "data": {"test_envs": [1], "train_envs": [0],
          "environments": ["a", "b"]}}
READING = {"components": {"cpu": {"joules": 2.0, "source": "estimated:cpu-time"}}, "joules": 2.0, "seconds": 1.0}
METRICS = {"env0_in_acc": 0.5, "env0_out_acc": 0.6, "env1_in_acc": 0.4, "env1_out_acc": 0.4,
           "env0_in_loss": 1.0}


def epoch(n: int, **change) -> dict:
    line = {"type": "epoch", "epoch": n, "step": 3 * (n + 1), "updates": 3 * (n + 1), "seconds": 1.0,
            "metrics": dict(METRICS), "energy": {"train": READING, "eval": READING}}
    line.update(change)
    return {k: v for k, v in line.items() if v is not ...}


def write_run(folder: Path, lines: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


BAD = {
    "energy NaN": (epoch(1, energy=math.nan), "energy must be a mapping"),
    "no metrics": (epoch(1, metrics=...), "metrics must be a mapping"),
    "accuracy x": (epoch(1, metrics={**METRICS, "env1_in_acc": "x"}), "metrics.env1_in_acc must be a number"),
    "accuracy 5.0": (epoch(1, metrics={**METRICS, "env1_in_acc": 5.0}), "metrics.env1_in_acc is 5.0; an accuracy"),
    "epoch text": (epoch(1, epoch="1"), "epoch must be an integer"),
    "joules negative": (epoch(1, energy={"train": {"components": {"cpu": {"joules": -1, "source": "x"}}}}),
                        "energy.train.components.cpu.joules must be a finite number >= 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_line_is_named(tmp_path, case):
    line, expected = BAD[case]
    path = write_run(tmp_path / "run", [HEADER, epoch(0), line])
    with pytest.raises(RecordsError, match=f"records.jsonl:3: malformed epoch record: {expected}"):
        read_records(path)


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_api_skips_a_bad_file_with_one_warning(tmp_path, capsys, case):
    import dagrad

    write_run(tmp_path / "good", [HEADER, epoch(0), epoch(1)])
    write_run(tmp_path / "bad", [HEADER, epoch(0), BAD[case][0]])
    runs = dagrad.load_runs(tmp_path)
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert "bad/records.jsonl:3: malformed epoch record" in warning
    assert [r.path.parent.name for r in runs] == ["good"]
    with pytest.raises(RecordsError, match="bad/records.jsonl:3"):
        dagrad.load_run(tmp_path / "bad")


def test_report_skips_the_bad_file_and_reports_the_rest(cli, tmp_path):
    summary = {"type": "summary", "metrics": None, "reported": "online", "updates": 6}
    write_run(tmp_path / "sweep" / "good", [HEADER, epoch(0), epoch(1), summary])
    write_run(tmp_path / "sweep" / "bad", [HEADER, epoch(0), BAD["accuracy 5.0"][0], summary])
    result = cli("report", "sweep")
    assert result.code == 0, result.err
    [warning] = result.err.strip().splitlines()
    assert "bad/records.jsonl:3" in warning and "accuracy" in warning
    assert "500.0" not in result.out and "40.0" in result.out


def test_an_unknown_format_version_is_refused(tmp_path):
    path = write_run(tmp_path / "run", [{**HEADER, "format": 99}, epoch(0)])
    with pytest.raises(RecordsError, match="records format 99 is not one this dagrad reads .*upgrade dagrad"):
        read_records(path)


def test_a_symlinked_run_folder_is_followed(tmp_path):
    write_run(tmp_path / "elsewhere" / "run", [HEADER, epoch(0)])
    (tmp_path / "sweep").mkdir()
    os.symlink(tmp_path / "elsewhere" / "run", tmp_path / "sweep" / "run")
    os.symlink(tmp_path / "sweep", tmp_path / "sweep" / "loop")  # a loop ends
    assert find_runs(tmp_path / "sweep") == [tmp_path / "sweep" / "run" / "records.jsonl"]


def test_a_dangling_link_is_named(tmp_path):
    (tmp_path / "sweep").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "sweep" / "run")
    with pytest.warns(UserWarning, match="does not exist; skipped"):
        assert find_runs(tmp_path / "sweep") == []

