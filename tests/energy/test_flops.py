"""FLOPs of small networks against hand counts (matmul = 2*m*n*k), and caching per key."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dagrad.energy.flops import FlopsTally


def _mm(m: int, n: int, k: int) -> int:
    return 2 * m * n * k


def test_linear_forward_matches_hand_count():
    torch.manual_seed(0)
    layer = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    out, flops = FlopsTally().run("fwd", lambda: layer(x))
    assert out.shape == (5, 4)
    assert flops == _mm(5, 4, 8) == 320


def test_training_step_counts_forward_and_backward_of_linear_layers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(5, 8), torch.randint(0, 4, (5,))
    before = net[0].weight.detach().clone()

    def step() -> float:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    loss, flops = FlopsTally().run(("mlp", (5, 8)), step)
    forward = _mm(5, 16, 8) + _mm(5, 4, 16)
    # backward: each layer's weight gradient; the input gradient only for the second layer (x needs no grad)
    backward = _mm(16, 8, 5) + _mm(4, 16, 5) + _mm(5, 16, 4)
    assert flops == forward + backward == 4480
    assert math.isfinite(loss)
    assert not torch.equal(before, net[0].weight)  # the optimizer step really ran under the counter


def test_convolution_counts_output_elements_times_kernel_volume():
    conv = nn.Conv2d(1, 2, kernel_size=3)
    x = torch.randn(1, 1, 5, 5)
    _, flops = FlopsTally().run("conv", lambda: conv(x))
    assert flops == 2 * (2 * 3 * 3) * (1 * 3 * 3)  # 2 * output elements * (C_in * kh * kw)


def test_second_call_with_same_key_reuses_the_count():
    layer = nn.Linear(8, 4)
    tally = FlopsTally()
    calls = []

    def fwd():
        calls.append(1)
        return layer(torch.randn(5, 8))

    results = [tally.run("k", fwd)[1] for _ in range(3)]
    assert results == [320.0, 320.0, 320.0]
    assert tally.counted_calls == 1 and len(calls) == 3  # counted once, run every time
    assert tally.cached("k") == 320.0 and tally.cached("other") is None


def test_period_counts_several_calls_and_reuses_their_mean():
    layer = nn.Linear(8, 4)
    tally = FlopsTally()
    batches = iter([5, 10, 7, 7])
    got = [tally.run("k", lambda: layer(torch.randn(next(batches), 8)), period=2)[1] for _ in range(4)]
    assert got == [320.0, 640.0, 480.0, 480.0]
    assert tally.counted_calls == 2
    with pytest.raises(ValueError, match="period"):
        tally.run("k", lambda: None, period=0)


def test_disabled_tally_runs_fn_and_reports_nan():
    tally = FlopsTally(enabled=False)
    out, flops = tally.run("k", lambda: 41 + 1)
    assert out == 42 and math.isnan(flops) and tally.counted_calls == 0
    assert "2*m*n*k" in FlopsTally.convention
