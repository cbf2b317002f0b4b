"""IGA: the gradient-variance penalty from its definition; DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams


def test_penalty_is_the_summed_squared_gap_to_the_mean_gradient():
    algo = build("iga", resolve_hparams("iga", {}, 0, small_images=True), featurizer(), 3, 2)
    batches = [(torch.randn(5, 6), torch.randint(0, 3, (5,))) for _ in range(2)]
    params = list(algo.network.parameters())
    grads = [torch.autograd.grad(F.cross_entropy(algo.network(x), y), params) for x, y in batches]
    mean = [(a + b) / 2 for a, b in zip(*grads)]
    expected = sum(((g - m) ** 2).sum().item() for grad in grads for g, m in zip(grad, mean))
    assert algo.update(batches)["penalty"].item() == pytest.approx(expected, rel=1e-5)


def test_draws_equal_domainbeds():
    assert_draws("iga", "PACS", 0, 0, {"penalty": 1000.0})  # DomainBed's default is the integer 1000
    assert_draws("iga", "RotatedMNIST", 1, 0, {"penalty": 2400.017030810722})
    assert_draws("iga", "PACS", 2, 1, {"penalty": 30458.621878430775})
