"""A round's figures do not depend on the order in which the runtime hands the clients' replies over: the
simulation and deployment runtimes deliver them as they arrive, and an aggregate summed in arrival order
would move the global model by rounding. `federated.runtime=inprocess` runs from `dagrad train` and gives
the records Flower's simulation runtime gives (the server aggregates in client order in both)."""

from __future__ import annotations

import torch

from dagrad.cli import main
from dagrad.federated.apps import client_app
from dagrad.federated.inprocess import InProcessGrid
from dagrad.federated.records import CLIENTS_FOLDER
from dagrad.federated.server import FederatedServer
from dagrad.records.files import read_records
from dagrad.run.checkpoint import read_checkpoint


class Reversed(InProcessGrid):
    """Replies handed over last client first, as a runtime whose first client finished last would."""

    def send_and_receive(self, messages, timeout=None):
        return list(reversed(super().send_and_receive(messages, timeout)))


def _epochs(folder):
    return [line for line in read_records(folder / "records.jsonl") if line["type"] == "epoch"]


def test_reply_order_does_not_change_the_global_model(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=3", "federated.lambda=1", "epochs=3")
    federated["run"](exp, tmp_path / "in-order")
    grid = Reversed(client_app(lambda context: (exp, tmp_path / "reversed" / CLIENTS_FOLDER)), 3)
    FederatedServer(exp, tmp_path / "reversed", progress=False).run(grid)
    a = read_checkpoint(tmp_path / "in-order" / "checkpoint.pt")["algorithm"]
    b = read_checkpoint(tmp_path / "reversed" / "checkpoint.pt")["algorithm"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for x, y in zip(_epochs(tmp_path / "in-order"), _epochs(tmp_path / "reversed"), strict=True):
        assert x["metrics"] == y["metrics"]
        assert [c["client"] for c in x["federated"]["clients"]] == [0, 1, 2]
        assert [c["client"] for c in y["federated"]["clients"]] == [0, 1, 2]


def test_train_in_process_from_the_command_line(tmp_path, capsys):
    args = ["epochs=2", "federated.clients=2", "federated.local_steps=1", "network.options.width=8",
            "data.batch_size=8", "federated.runtime=inprocess"]
    assert main(["--threads", "1", "train", "-c", "federated/digits", *args, "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    assert "OOD accuracy" in capsys.readouterr().out
    lines = read_records(tmp_path / "run" / "records.jsonl")
    assert [line["type"] for line in lines] == ["header", "epoch", "epoch", "summary"]
    assert lines[0]["config"]["federated"]["runtime"] == "inprocess"
    assert all(c["bytes"]["sent"] > 0 for c in lines[1]["federated"]["clients"])
