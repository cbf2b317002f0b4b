"""`dagrad train -c federated/digits` end to end in Flower's simulation runtime (Ray), records that `dagrad
report` reads, no Ray process left behind; and without Flower, one line and exit code 2."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys

import pytest

from dagrad.cli import main
from dagrad.records.files import read_records

TINY = ["epochs=2", "federated.clients=2", "federated.local_steps=1", "network.options.width=8", "data.batch_size=8"]


def _ray_processes() -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()
            if any(name in line for name in ("raylet", "gcs_server", "ray::", "default_worker.py"))}


def test_train_federated_digits_in_the_simulation_runtime_then_report(tmp_path, capsys):
    pytest.importorskip("ray")
    before = _ray_processes()
    assert main(["--threads", "1", "train", "-c", "federated/digits", *TINY, "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    out = capsys.readouterr()
    assert "OOD accuracy" in out.out and "Traceback" not in out.err
    assert "deprecated" not in out.err.lower()
    lines = read_records(tmp_path / "run" / "records.jsonl")
    assert [line["type"] for line in lines] == ["header", "epoch", "epoch", "summary"]
    header, first = lines[0], lines[1]
    assert header["config"]["federated"]["clients"] == 2 and header["versions"]["flwr"]
    assert len(first["federated"]["clients"]) == 2
    assert all(c["bytes"]["sent"] > 0 and c["energy"]["train"]["joules"] > 0 for c in first["federated"]["clients"])
    assert {f"env{i}_out_acc" for i in range(5)} | {"env5_in_acc"} <= set(first["metrics"])
    assert main(["report", str(tmp_path / "run")]) == 0
    table = (tmp_path / "run" / "report" / "table.md").read_text()
    assert "rotated_digits" in table and "ERM" in table
    assert _ray_processes() <= before  # ray.shutdown ended every process the run started
    json.dumps(lines)  # plain data throughout
    # --resume of a finished run reads its config from the records and starts no runtime
    text = (tmp_path / "run" / "records.jsonl").read_text()
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "records.jsonl").read_text() == text


def test_without_flower_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_flower(name, *args, **kwargs):
        if name == "flwr" or name.startswith("flwr."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flower)
    for module in [m for m in sys.modules if m == "flwr" or m.startswith("flwr.")]:
        monkeypatch.delitem(sys.modules, module)
    assert main(["train", "-c", "federated/digits", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'dagrad[federated]'" in err[0] and "Flower" in err[0]
    assert not (tmp_path / "run" / "records.jsonl").exists()
