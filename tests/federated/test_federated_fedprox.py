"""FedProx: Flower's strategy sends the proximal weight, and every client's update gains mu (w - w_global),
the gradient of mu/2 ||w - w_global||^2, whatever loss its algorithm computes; a client's ConfigError
reaches the server as the run's one-line error."""

from __future__ import annotations

import json

import pytest
import torch

from dagrad.federated.local import proximal_hooks
from dagrad.utils.errors import ConfigError


def test_proximal_gradient_on_fixed_tensors():
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        layer.bias.copy_(torch.tensor([0.25, -0.5]))
    anchor = {"weight": torch.zeros(2, 3), "bias": torch.ones(2)}
    x = torch.tensor([[1.0, 2.0, 3.0]])
    hooks = proximal_hooks(layer, anchor, mu=0.1)
    layer(x).sum().backward()
    for hook in hooks:
        hook.remove()
    # d/dw of sum(Wx + b) is x for every row, of the bias 1; the proximal term adds 0.1 (w - anchor)
    assert torch.allclose(layer.weight.grad, x.expand(2, 3) + 0.1 * layer.weight.detach())
    assert torch.allclose(layer.bias.grad, torch.ones(2) + 0.1 * (layer.bias.detach() - 1.0))
    layer.zero_grad()
    layer(x).sum().backward()  # hooks removed: the plain gradient again
    assert torch.allclose(layer.bias.grad, torch.ones(2))


def _drift(grid) -> float:
    """How far the clients' local models moved from the global model they trained from."""
    sent = {m.metadata.dst_node_id: m.content["arrays"].to_torch_state_dict()
            for m in grid.sent if m.metadata.message_type == "train"}
    total = 0.0
    for reply in grid.replies:
        if "arrays" in reply.content:
            local = reply.content["arrays"].to_torch_state_dict()
            start = sent[reply.metadata.src_node_id]
            total += sum(float((local[k].double() - start[k].double()).norm()) for k in local
                         if local[k].is_floating_point())
    return total


def test_fedprox_sends_mu_and_holds_clients_near_the_global_model(tmp_path, federated):
    plain = federated["run"](federated["tiny"]("federated.clients=2", "epochs=1", "federated.local_steps=5"),
                             tmp_path / "avg")
    prox = federated["run"](federated["tiny"]("federated.clients=2", "epochs=1", "federated.local_steps=5",
                                              "federated.strategy=fedprox", "federated.mu=50"), tmp_path / "prox")
    assert all(m.content["config"]["proximal-mu"] == 50.0 for m in prox.sent if m.metadata.message_type == "train")
    assert all("proximal-mu" not in m.content["config"] for m in plain.sent if m.metadata.message_type == "train")
    assert _drift(prox) < 0.8 * _drift(plain)


def test_a_client_without_the_domains_its_objective_needs_stops_the_run_before_it_starts(tmp_path, federated):
    exp = federated["tiny"]("federated.clients=5", "federated.lambda=0", "algorithm.name=coral")
    with pytest.raises(ConfigError, match=r"client 0 holds 1 training domain"):
        federated["run"](exp, tmp_path / "run")
    assert not (tmp_path / "run" / "records.jsonl").exists()


def test_a_clients_own_config_error_reaches_the_server_as_its_line(tmp_path, federated, monkeypatch):
    from dagrad.federated import build

    exp = federated["tiny"]("federated.clients=2", "algorithm.name=coral")
    real = build.check_objective

    def stricter(algorithm, client, domains):  # as if client 1 found too few domains once it had built its data
        if client == 1 and domains < 99:
            raise ConfigError(f"federated: client {client} holds {domains} training domain(s) (from the client)")
        return real(algorithm, client, domains)

    monkeypatch.setattr(build, "check_clients", lambda exp, data: None)
    monkeypatch.setattr(build, "check_objective", stricter)
    with pytest.raises(ConfigError, match=r"client 1 holds \d training domain\(s\) \(from the client\)"):
        federated["run"](exp, tmp_path / "run")
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["header"]
