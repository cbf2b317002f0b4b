"""FedDG-GA as a strategy (aggregation weights from the reported generalisation gaps, applied to the
aggregate) and FedSR as a client objective (its reference marginal stays on each client), in-process."""

from __future__ import annotations

import json

import pytest
import torch

from dagrad.algorithms.fedsr import LOCAL_STATE
from dagrad.cli import main
from dagrad.config.experiment import load_experiment
from dagrad.federated.aggregate import weighted_average
from dagrad.federated.apps import _SITES
from dagrad.federated.fedga import GeneralizationAdjustment
from dagrad.records.files import read_records
from dagrad.run.checkpoint import read_checkpoint
from dagrad.utils.errors import ConfigError


def _exchanges(grid, kind):
    """{round: {client: report}} of the messages of `kind` and their replies, with the reply itself."""
    out: dict[int, dict[int, tuple]] = {}
    for sent, reply in zip(grid.sent, grid.replies):
        if sent.metadata.message_type == kind:
            report = json.loads(reply.content["report"]["json"])
            out.setdefault(int(sent.content["config"]["round"]), {})[int(report["client"])] = (report, reply)
    return out


def _pooled(splits, names, key):
    return sum(float(splits[n][key]) * float(splits[n]["n"]) for n in names) / sum(float(splits[n]["n"]) for n in names)


@pytest.mark.parametrize("metric, key", [("loss", "loss"), ("accuracy", "acc")])
def test_fedga_weights_are_the_adjustment_of_the_reported_gaps_and_weigh_the_aggregate(tmp_path, federated,
                                                                                       metric, key):
    exp = federated["tiny"]("federated.strategy=fedga", "federated.clients=3", "federated.ga_step_size=0.5",
                            f"federated.ga_metric={metric}")
    grid = federated["run"](exp, tmp_path / "run")
    trained, evaluated = _exchanges(grid, "train"), _exchanges(grid, "evaluate")
    lines = [line for line in read_records(tmp_path / "run" / "records.jsonl") if line["type"] == "epoch"]
    reference = GeneralizationAdjustment(range(3), 2, step_size=0.5, metric=metric)
    for r, line in enumerate(lines):
        coefficients = reference.coefficients(sorted(trained[r]))
        assert {c["client"]: c["weight"] for c in line["federated"]["clients"]} == coefficients
        local, global_ = {}, {}
        for c, (report, _) in trained[r].items():
            names = sorted(report["validation"]["splits"])
            assert names and all(n.endswith("_out") for n in names)
            local[c] = _pooled(report["validation"]["splits"], names, key)
            global_[c] = _pooled(evaluated[r][c][0]["splits"], names, key)
        assert {c["client"]: (c["validation"]["local"], c["validation"]["global"])
                for c in line["federated"]["clients"]} == {c: (local[c], global_[c]) for c in local}
        after = reference.update(r, local, global_)
        assert line["federated"]["fedga"]["weights_after"] == {str(c): w for c, w in after.items()}
    if metric == "loss":  # (a tiny run's accuracies may tie: then the weights stay)
        assert coefficients != {c: 1 / 3 for c in range(3)}  # the second round's weights moved
    # the last round's aggregate is the clients' models weighted by those coefficients
    final = read_checkpoint(tmp_path / "run" / "checkpoint.pt")["algorithm"]
    states = [trained[1][c][1].content["arrays"].to_torch_state_dict() for c in sorted(trained[1])]
    expected = weighted_average(states, [coefficients[c] for c in sorted(trained[1])])
    for key, value in expected.items():
        if value.is_floating_point():
            assert torch.allclose(final[key], value, atol=1e-6), key
    by_examples = weighted_average(states, [trained[1][c][0]["examples"] for c in sorted(trained[1])])
    if metric == "loss":
        assert any(not torch.allclose(final[k], by_examples[k], atol=1e-7)
                   for k in final if final[k].is_floating_point())


def test_fedsr_keeps_its_reference_marginal_on_each_client(tmp_path, federated):
    exp = federated["tiny"]("algorithm.name=fedsr", "federated.clients=2", "federated.lambda=0")
    grid = federated["run"](exp, tmp_path / "run")
    for report, reply in [pair for by_client in _exchanges(grid, "train").values() for pair in by_client.values()]:
        sent = reply.content["arrays"].to_torch_state_dict()
        assert not set(LOCAL_STATE) & set(sent) and "classifier.weight" in sent  # only the network travels
    final = read_checkpoint(tmp_path / "run" / "checkpoint.pt")["algorithm"]
    assert torch.equal(final["reference_mu"], torch.zeros_like(final["reference_mu"]))  # never averaged
    assert torch.equal(final["reference_scale"], torch.ones(()))
    sites = {k[1]: s for k, s in _SITES.items() if s.folder == tmp_path / "run" / "clients"}
    states = {c: s.algorithm.state_dict() for c, s in sites.items()}
    assert sorted(states) == [0, 1]
    for key in LOCAL_STATE:  # each client's own, trained on its own domain
        assert not torch.equal(states[0][key], states[1][key]) and not torch.equal(states[0][key], final[key])
    for c, state in states.items():
        assert all(torch.equal(state[k], final[k]) for k in final if k not in LOCAL_STATE)  # the aggregate
        saved = read_checkpoint(tmp_path / "run" / "clients" / f"client{c}" / "state-round000001.pt")
        assert all(torch.equal(saved["local_state"][k], state[k]) for k in LOCAL_STATE)


def test_fedga_options_identity_and_errors(capsys):
    base = load_experiment(["federated/digits"])
    unused = load_experiment(["federated/digits"], ["federated.ga_step_size=0.5", "federated.ga_metric=loss"])
    assert unused.run_id == base.run_id  # FedDG-GA's settings are no part of a fedavg run
    ga = load_experiment(["federated/digits"], ["federated.strategy=fedga"])
    assert ga.run_id != base.run_id
    assert ga.run_id != load_experiment(["federated/digits"], ["federated.strategy=fedga",
                                                                "federated.ga_metric=loss"]).run_id
    for override, key in [("federated.ga_metric=auc", "federated.ga_metric"),
                          ("federated.ga_step_size=1.5", "federated.ga_step_size"),
                          ("federated.strategy=fedsr", "federated.strategy")]:
        with pytest.raises(ConfigError, match=key):
            load_experiment(["federated/digits"], [override])
        assert main(["train", "-c", "federated/digits", override, "--out", "/nonexistent/never"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and key in err[0] and "Traceback" not in err[0]
