"""MLDG: meta-train/meta-test splits, the first-order gradient G_i + beta G_j, DomainBed's draws."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.mldg import meta_splits


def test_splits_pair_each_meta_train_environment_with_a_meta_test_one():
    batches = [(torch.full((n, 1), float(k)), torch.full((n,), k)) for k, n in enumerate([4, 3, 5])]
    torch.manual_seed(3)
    order = torch.randperm(3).tolist()
    torch.manual_seed(3)
    pairs = meta_splits(batches, 1)
    assert [(int(a[1][0]), int(b[1][0])) for a, b in pairs] == [(order[0], order[2]), (order[1], order[2])]
    assert meta_splits(batches[:2], 2) == []  # every environment meta-test: nothing to train on


def test_gradient_is_first_order_mldg():
    hp = resolve_hparams("mldg", {"n_meta_test": 1, "mldg_beta": 0.7}, 0, small_images=True)
    algo = build("mldg", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]
    torch.manual_seed(9)
    i, j = torch.randperm(2).tolist()
    net = copy.deepcopy(algo.network)
    gi = torch.autograd.grad(F.cross_entropy(net(batches[i][0]), batches[i][1]), list(net.parameters()))
    inner = torch.optim.Adam(net.parameters(), lr=1e-3)
    for p, gp in zip(net.parameters(), gi):
        p.grad = gp.clone()
    inner.step()
    gj = torch.autograd.grad(F.cross_entropy(net(batches[j][0]), batches[j][1]), list(net.parameters()))
    expected = [(a + 0.7 * b) / 2 for a, b in zip(gi, gj)]
    steps = []
    algo.optimizer.register_step_pre_hook(lambda opt, *_: steps.append([p.grad.clone() for p in algo.network.parameters()]))
    torch.manual_seed(9)
    algo.update(batches)
    for got, want in zip(steps[0], expected):
        assert torch.allclose(got, want, atol=1e-7)


def test_draws_equal_domainbeds():
    assert_draws("mldg", "RotatedMNIST", 0, 0, {"mldg_beta": 1.0, "n_meta_test": 2})
    assert_draws("mldg", "RotatedMNIST", 1, 0, {"mldg_beta": 5.4211455811356215, "n_meta_test": 1})
    assert_draws("mldg", "PACS", 2, 1, {"mldg_beta": 0.14368509659389403, "n_meta_test": 1})
