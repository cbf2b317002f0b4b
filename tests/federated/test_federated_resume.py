"""A federated run killed in the middle of a round resumes from the last round's checkpoint to the same
records and the same global model as an uninterrupted run (clients' optimizer and GradSamp states included,
FedDG-GA's weights on the server, FedSR's reference marginal on each client)."""

from __future__ import annotations

import pytest
import torch

from dagrad.records.files import read_records
from dagrad.run.checkpoint import read_checkpoint
from dagrad.utils.errors import ConfigError

SETTINGS = ["federated.clients=2", "federated.fraction=0.5", "epochs=4", "gradsamp.sampler=tensor",
            "gradsamp.schedule=epochs", "gradsamp.schedule_options.epochs=[3]"]


def _comparable(folder):
    """Each round's line without what differs between any two runs (times, energy, the machine's load)."""
    out = []
    for line in read_records(folder / "records.jsonl"):
        if line["type"] != "epoch":
            continue
        clients = [{k: c.get(k) for k in ("client", "kind", "examples", "steps", "bytes", "weight", "validation")}
                   for c in line["federated"]["clients"]]
        out.append({k: line[k] for k in ("epoch", "step", "updates", "kind", "metrics", "update_stats")}
                   | {"clients": clients, "fedga": line["federated"].get("fedga")})
    return out


@pytest.mark.parametrize("side, extra", [
    ("client", ()), ("server", ()),
    ("client", ("federated.strategy=fedga", "federated.ga_metric=loss", "federated.clients=3",
                "federated.fraction=0.67")),
    ("client", ("algorithm.name=fedsr",))])
def test_resume_after_a_kill_gives_the_uninterrupted_records(tmp_path, federated, side, extra):
    exp = federated["tiny"](*SETTINGS, f"federated.gradsamp_side={side}", *extra)
    federated["run"](exp, tmp_path / "whole")

    def kill(message):  # in round 2, after the clients trained (and saved their state), before evaluation
        return message.metadata.message_type == "evaluate" and message.content["config"]["round"] == 2

    with pytest.raises(KeyboardInterrupt):
        federated["run"](exp, tmp_path / "killed", stop=kill)
    assert len(_comparable(tmp_path / "killed")) == 2
    with pytest.raises(ConfigError, match="already holds a run"):
        federated["run"](exp, tmp_path / "killed")
    federated["run"](exp, tmp_path / "killed", resume=True)
    assert _comparable(tmp_path / "killed") == _comparable(tmp_path / "whole")
    assert len(_comparable(tmp_path / "whole")) == 4
    a = read_checkpoint(tmp_path / "whole" / "checkpoint.pt")["algorithm"]
    b = read_checkpoint(tmp_path / "killed" / "checkpoint.pt")["algorithm"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [line["type"] for line in read_records(tmp_path / "killed" / "records.jsonl")][-1] == "summary"
    if "federated.strategy=fedga" in extra:  # the weights moved, and resumed from the checkpoint
        weights = [line["fedga"]["weights_after"] for line in _comparable(tmp_path / "whole")]
        assert weights[1] != {str(c): 1 / 3 for c in range(3)}  # two of three clients a round: gaps moved them
        assert read_checkpoint(tmp_path / "killed" / "checkpoint.pt")["strategy"]["weights"] == \
            [weights[-1][str(c)] for c in range(3)]
