"""FedAvg's arithmetic: one client with every example, full participation, equals centralised ERM on the
same batches; with several clients the global model is the example-count weighted mean of theirs."""

from __future__ import annotations

import json

import torch

from dagrad.federated import build
from dagrad.federated.wire import aliases
from dagrad.records.files import read_records
from dagrad.run.checkpoint import read_checkpoint
from dagrad.run.evaluation import evaluate
from dagrad.utils.seeding import seed_everything


def test_one_client_fedavg_equals_centralised_erm(tmp_path, federated):
    # one local epoch per round (local_steps unset: one pass over the client's data), full participation
    exp = federated["tiny"]("federated.clients=1", "epochs=2", "federated.local_steps=null", "data.batch_size=32")
    federated["run"](exp, tmp_path / "fed")
    # the centralised loop: the same initial model, the same batches (the client's seed), Adam kept throughout
    seed_everything(exp.seed)
    data = build.build_data(exp)
    seed_everything(exp.seed)
    model = build.build_model(exp, data, torch.device("cpu"))
    seed, steps = build.client_seed(exp.seed, 0), data.default_steps_per_epoch()
    assert steps > 1
    stream = data.training_loaders(steps, seed, unlabelled=False)
    for r in range(2):
        torch.manual_seed(build.round_seed(seed, r))
        for i, (labelled, _, _) in enumerate(stream.epoch(r)):
            model.progress = (r * steps + i) / (2 * steps)
            model.update(labelled, None)
    federated_state = read_checkpoint(tmp_path / "fed" / "checkpoint.pt")["algorithm"]
    for name, value in model.state_dict().items():
        assert torch.allclose(federated_state[name].float(), value.float(), rtol=0, atol=1e-6), name
    metrics, _ = evaluate(model, data.eval_loader(), torch.device("cpu"))
    last = [line for line in read_records(tmp_path / "fed" / "records.jsonl") if line["type"] == "epoch"][-1]
    assert last["updates"] == 2 * steps and last["kind"] == "train"
    assert set(last["metrics"]) == set(metrics)
    for key, value in metrics.items():
        assert abs(last["metrics"][key] - value) < 1e-6, key


def test_aggregation_weights_follow_example_counts(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=2", "federated.lambda=0", "epochs=1")
    grid = federated["run"](exp, tmp_path / "fed")
    trained = sorted((r for r in grid.replies if "arrays" in r.content),
                     key=lambda r: json.loads(r.content["report"]["json"])["client"])
    reports = [json.loads(r.content["report"]["json"]) for r in trained]
    counts = [rep["examples"] for rep in reports]
    data = build.build_data(exp)
    shares = build.client_shares(data, exp.cfg.federated, exp.seed)
    assert counts == [sum(len(v) for k, v in share.items() if k.endswith("_in")) for share in shares]
    assert counts[0] != counts[1]  # lambda 0: domains 0, 2, 4 on one client, 1 and 3 on the other
    assert all(r.content["metrics"]["num-examples"] == n for r, n in zip(trained, counts))
    expected = {}
    for reply, n in zip(trained, counts):
        for name, array in reply.content["arrays"].to_torch_state_dict().items():
            expected[name] = expected.get(name, 0) + array.double() * n / sum(counts)
    glob = read_checkpoint(tmp_path / "fed" / "checkpoint.pt")["algorithm"]
    for name, value in expected.items():
        if glob[name].is_floating_point():
            assert torch.allclose(glob[name].double(), value, atol=1e-6), name
    # a client's bytes: the global weights it received (to train, to evaluate) and the weights it sent back
    from flwr.app import ArrayRecord

    # each weight once: ERM's featurizer is also network.0, and that alias does not travel
    alias = aliases(build.build_model(exp, data, torch.device("cpu")).state_dict())
    sent = {k: v for k, v in glob.items() if k not in alias}
    assert alias and len(sent) < len(glob)
    sizes = ArrayRecord(sent).count_bytes()
    assert sizes > sum(v.numel() * v.element_size() for v in sent.values())  # the tensors and their framing
    clients = [line for line in read_records(tmp_path / "fed" / "records.jsonl") if line["type"] == "epoch"][0]
    for c in clients["federated"]["clients"]:
        assert c["bytes"]["sent"] == sizes and c["bytes"]["received"] == 2 * sizes  # train + evaluate
        assert c["energy"]["train"]["joules"] > 0 and c["energy"]["eval"]["joules"] >= 0
    summary = read_records(tmp_path / "fed" / "records.jsonl")[-1]
    assert summary["federated"]["bytes"] == {"clients_sent": 2 * sizes, "clients_received": 4 * sizes}
