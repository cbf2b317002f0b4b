"""FedAvg's aggregation rule (McMahan et al. 2017: the average of client models weighted by example counts,
as Flower's `aggregate` computes it) and FedProx's proximal term (Li et al. 2020: mu/2 ||w - w_global||^2,
the global model a constant), on fixed tensors with values worked by hand. dagrad's own choices pinned here:
float64 accumulation returned in each tensor's dtype, and integer buffers (BatchNorm's counter) taking the
maximum over clients rather than an average."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dagrad.federated.aggregate import (
    normalized_weights, proximal_term, weighted_average, weighted_average_arrays, with_proximal_term,
)
from dagrad.utils.errors import ConfigError


def _state(w, mean, count):
    return {"w": torch.tensor(w), "bn.running_mean": torch.tensor(mean), "bn.num_batches_tracked": torch.tensor(count)}


def test_weights_follow_example_counts():
    assert normalized_weights([10, 30]) == [0.25, 0.75]
    assert normalized_weights([2, 0, 2]) == [0.5, 0.0, 0.5]
    a, b = _state([1.0, 2.0], [0.0, 4.0], 3), _state([3.0, 6.0], [2.0, 0.0], 5)
    by_counts, by_shares = weighted_average([a, b], [10, 30]), weighted_average([a, b], [0.25, 0.75])
    assert all(torch.equal(by_counts[k], by_shares[k]) for k in by_counts)


def test_floats_are_averaged_by_counts_and_counters_take_the_maximum():
    a, b = _state([1.0, 2.0], [0.0, 4.0], 3), _state([3.0, 6.0], [2.0, 0.0], 5)
    got = weighted_average([a, b], [1, 3])
    # 0.25·[1, 2] + 0.75·[3, 6] = [2.5, 5.0]; 0.25·[0, 4] + 0.75·[2, 0] = [1.5, 1.0]
    assert torch.equal(got["w"], torch.tensor([2.5, 5.0]))
    assert torch.equal(got["bn.running_mean"], torch.tensor([1.5, 1.0]))
    assert got["bn.num_batches_tracked"].dtype == torch.int64 and got["bn.num_batches_tracked"].item() == 5
    # the order clients report in changes nothing
    swapped = weighted_average([b, a], [3, 1])
    assert all(torch.equal(got[k], swapped[k]) for k in got)


def test_accumulation_is_float64_and_the_dtype_is_kept():
    a, b = {"w": torch.tensor([0.1], dtype=torch.float32)}, {"w": torch.tensor([0.7], dtype=torch.float32)}
    got = weighted_average([a, b], [1, 2])["w"]
    expected = (torch.tensor([0.1]).double() / 3 + torch.tensor([0.7]).double() * 2 / 3).float()
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    half = weighted_average([{"w": torch.tensor([1.0], dtype=torch.float16)}] * 2, [1, 1])["w"]
    assert half.dtype == torch.float16 and half.item() == 1.0


def test_one_client_is_returned_unchanged_and_detached():
    w = torch.tensor([0.3, -1.7], requires_grad=True)
    got = weighted_average([{"w": w, "n": torch.tensor(7)}], [12])
    assert torch.equal(got["w"], w.detach()) and not got["w"].requires_grad and got["n"].item() == 7


def test_modules_with_batchnorm_average_into_a_loadable_state():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)) for _ in range(3)]
    for steps, net in enumerate(nets, start=1):
        for _ in range(steps):
            net(torch.randn(4, 3))  # training mode: running stats and the counter move
    got = weighted_average([n.state_dict() for n in nets], [1, 1, 2])
    expected = sum(w * n.state_dict()["0.weight"].double() for w, n in zip([0.25, 0.25, 0.5], nets)).float()
    assert torch.equal(got["0.weight"], expected)
    assert got["1.num_batches_tracked"].item() == 3
    fresh = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    fresh.load_state_dict(got)
    assert torch.equal(fresh[1].running_var, got["1.running_var"])


def test_numpy_parameter_lists():
    a = [np.array([1.0, 2.0], dtype=np.float32), np.array(3, dtype=np.int64)]
    b = [np.array([3.0, 6.0], dtype=np.float32), np.array(5, dtype=np.int64)]
    got = weighted_average_arrays([a, b], [1, 3])
    assert got[0].dtype == np.float32 and got[0].tolist() == [2.5, 5.0]
    assert got[1].dtype == np.int64 and int(got[1]) == 5


@pytest.mark.parametrize("weights, message", [
    ([1, -1], r"^federated: client 1's aggregation weight -1 is not allowed; use a finite number >= 0$"),
    ([1, float("nan")], "client 1's aggregation weight nan"),
    ([0, 0], r"^federated: the aggregation weights \[0, 0\] sum to 0"),
    ([], "no clients to aggregate"),
])
def test_bad_weights_are_one_line(weights, message):
    states = [{"w": torch.zeros(1)}] * len(weights)
    with pytest.raises(ConfigError, match=message):
        weighted_average(states, weights)


def test_mismatched_states_are_refused():
    with pytest.raises(ValueError, match=r"client 1's state has other keys than client 0's \(missing \['v'\]"):
        weighted_average([{"w": torch.zeros(1), "v": torch.zeros(1)}, {"w": torch.zeros(1)}], [1, 1])
    with pytest.raises(ValueError, match=r"client 1's w is \(2,\)"):
        weighted_average([{"w": torch.zeros(1)}, {"w": torch.zeros(2)}], [1, 1])
    with pytest.raises(ValueError, match="2 client states but 3 weights"):
        weighted_average([{"w": torch.zeros(1)}] * 2, [1, 1, 1])


def test_proximal_term_value_and_gradient():
    w = [torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([[3.0]], requires_grad=True)]
    g = [torch.tensor([0.0, 0.5], requires_grad=True), torch.tensor([[1.0]])]
    term = proximal_term(w, g, mu=0.1)
    # ||w - g||^2 = 1 + 1.5^2 + 2^2 = 7.25; 0.1 / 2 · 7.25 = 0.3625
    assert term.item() == pytest.approx(0.3625, abs=1e-7)
    term.backward()
    # d/dw = mu (w - g) = 0.1·[1, 1.5], 0.1·[[2]]; the global tensors are constants
    assert torch.allclose(w[0].grad, torch.tensor([0.1, 0.15]))
    assert torch.allclose(w[1].grad, torch.tensor([[0.2]]))
    assert g[0].grad is None


def test_with_proximal_term_adds_the_term_to_a_model_loss():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0]]))
        model.bias.fill_(0.5)
    global_params = [torch.tensor([[0.0, 0.0]]), torch.tensor([0.0])]
    loss = model(torch.tensor([[2.0, 1.0]])).sum()  # 2 - 1 + 0.5 = 1.5
    total = with_proximal_term(loss, model, global_params, mu=2.0)
    # 1.5 + 2/2 · (1 + 1 + 0.25) = 3.75
    assert total.item() == pytest.approx(3.75)
    total.backward()
    # loss gradient x = [2, 1] plus mu (w - 0) = 2·[1, -1]; bias: 1 + 2·0.5
    assert torch.allclose(model.weight.grad, torch.tensor([[4.0, -1.0]]))
    assert torch.allclose(model.bias.grad, torch.tensor([2.0]))
    assert with_proximal_term(loss, model, global_params, mu=0.0) is loss


@pytest.mark.parametrize("mu", [-0.1, float("inf"), True, "0.1"])
def test_bad_mu_is_one_line(mu):
    with pytest.raises(ConfigError, match=r"^federated.fedprox.mu: .* use a finite number >= 0$"):
        proximal_term([torch.zeros(1)], [torch.zeros(1)], mu)


def test_proximal_term_refuses_mismatched_parameters():
    with pytest.raises(ValueError, match="1 local tensors but 2 global ones"):
        proximal_term([torch.zeros(1)], [torch.zeros(1), torch.zeros(1)], 0.1)
    with pytest.raises(ValueError, match=r"tensor 0 is \(1,\) locally, \(2,\) globally"):
        proximal_term([torch.zeros(1)], [torch.zeros(2)], 0.1)
