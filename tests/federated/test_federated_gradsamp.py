"""GradSamp in rounds: server side, a whole round is a draw from the last two global models and no client
trains; client side, a client's local training is replaced by a draw from its own last two local models."""

from __future__ import annotations

import copy
import json

import torch

from dagrad.federated import build
from dagrad.federated.wire import aliases, with_aliases
from dagrad.gradsamp import GradSamp
from dagrad.records.files import read_records
from dagrad.run.checkpoint import read_checkpoint

DRAW_ROUND = ["gradsamp.schedule=epochs", "gradsamp.schedule_options.epochs=[2]", "epochs=3"]


def _epochs(folder):
    return [line for line in read_records(folder / "records.jsonl") if line["type"] == "epoch"]


def test_server_side_draw_equals_the_sampler_on_the_global_models(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=2", "gradsamp.sampler=tensor", "federated.gradsamp_side=server",
                            *DRAW_ROUND)
    grid = federated["run"](exp, tmp_path / "fed")
    trained_rounds = [m.content["config"]["round"] for m in grid.sent if m.metadata.message_type == "train"]
    assert sorted(set(trained_rounds)) == [0, 1]  # no client trains in the drawn round
    globals_by_round = {m.content["config"]["round"]: m.content["arrays"].to_torch_state_dict()
                        for m in grid.sent if m.metadata.message_type == "evaluate"}
    model = build.build_model(exp, build.build_data(exp), torch.device("cpu"))
    alias = aliases(model.state_dict())  # sent once: filled in from the tensor they alias
    gradsamp = GradSamp(exp.gradsamp, exp.seed)
    for r in (0, 1):
        model.load_state_dict(with_aliases(globals_by_round[r], alias))
        gradsamp.observe(model, "train")
    drawn = gradsamp.sample(model, {}, 2)
    assert drawn.kind == "sampled"
    for name, value in model.state_dict().items():
        assert torch.equal(with_aliases(globals_by_round[2], alias)[name], value), name
        assert torch.equal(read_checkpoint(tmp_path / "fed" / "checkpoint.pt")["algorithm"][name], value), name
    epochs = _epochs(tmp_path / "fed")
    assert [e["kind"] for e in epochs] == ["train", "train", "sampled"]
    assert epochs[2]["updates"] == epochs[1]["updates"] and epochs[2]["sampler_stats"]["sampler"] == "tensor"
    assert all(c["kind"] is None and c["energy"]["train"] is None for c in epochs[2]["federated"]["clients"])


def test_server_side_skip_keeps_the_global_model(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=2", "gradsamp.sampler=skip", "federated.gradsamp_side=server",
                            *DRAW_ROUND)
    grid = federated["run"](exp, tmp_path / "fed")
    sent = {m.content["config"]["round"]: m.content["arrays"].to_torch_state_dict()
            for m in grid.sent if m.metadata.message_type == "evaluate"}
    assert all(torch.equal(sent[1][k], sent[2][k]) for k in sent[1])
    assert [e["kind"] for e in _epochs(tmp_path / "fed")] == ["train", "train", "skipped"]


def test_client_side_draw_replaces_local_training(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=2", "gradsamp.sampler=tensor", "federated.gradsamp_side=client",
                            *DRAW_ROUND)
    grid = federated["run"](exp, tmp_path / "fed")
    replies = {}
    for r in grid.replies:
        if "arrays" in r.content:
            rep = json.loads(r.content["report"]["json"])
            replies[(rep["client"], len([k for k in replies if k[0] == rep["client"]]))] = (rep, r)
    received = {}  # (client node, round) -> the global weights it was sent to train from
    for m in grid.sent:
        if m.metadata.message_type == "train":
            received[(m.metadata.dst_node_id, m.content["config"]["round"])] = m.content["arrays"].to_torch_state_dict()
    nodes = sorted({node for node, _ in received})
    for client in (0, 1):
        local = [replies[(client, r)][1].content["arrays"].to_torch_state_dict() for r in range(3)]
        rep = replies[(client, 2)][0]
        assert rep["kind"] == "sampled" and rep["steps"] == 0 and rep["sampler_stats"]["sampler"] == "tensor"
        # the round's global model moved by a draw from this client's own last two local models (rounds 0 and
        # 1), with the client's seed: the draw replaces the local update
        model = build.build_model(exp, build.build_data(exp), torch.device("cpu"))
        alias = aliases(model.state_dict())
        gradsamp = GradSamp(exp.gradsamp, build.client_seed(exp.seed, client))
        for r in (0, 1):
            model.load_state_dict(with_aliases(copy.deepcopy(local[r]), alias))
            gradsamp.observe(model, "train")
        model.load_state_dict(with_aliases(received[(nodes[client], 2)], alias))
        gradsamp.sample(model, {}, 2)
        for name, value in model.state_dict().items():
            assert torch.equal(with_aliases(local[2], alias)[name], value), name
    epochs = _epochs(tmp_path / "fed")
    assert [e["kind"] for e in epochs] == ["train", "train", "sampled"]
    assert epochs[2]["updates"] == epochs[1]["updates"]
