"""Mixup: the pairing and lambda from their definitions, the mixed loss, DomainBed's draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.mixup import random_pairs


def test_pairs_follow_a_random_order_cyclically_cut_to_the_shorter_batch():
    batches = [(torch.full((n, 1), float(k)), torch.full((n,), k)) for k, n in enumerate([4, 3, 5])]
    torch.manual_seed(7)
    order = torch.randperm(3).tolist()
    torch.manual_seed(7)
    pairs = random_pairs(batches)
    assert [(int(a[1][0]), int(b[1][0])) for a, b in pairs] == [(order[k], order[(k + 1) % 3]) for k in range(3)]
    for (xi, yi), (xj, yj) in pairs:
        assert len(xi) == len(xj) == len(yi) == len(yj) == min(len(batches[int(yi[0])][0]), len(batches[int(yj[0])][0]))


def test_loss_mixes_inputs_and_labels_with_a_beta_lambda():
    hp = resolve_hparams("mixup", {"mixup_alpha": 0.4}, 0, small_images=True)
    algo = build("mixup", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(3)
    batches = [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]
    torch.manual_seed(5)
    np.random.seed(5)
    order = torch.randperm(2).tolist()
    lams = [np.random.beta(0.4, 0.4) for _ in range(2)]
    expected = 0.0
    with torch.no_grad():
        for k, lam in enumerate(lams):
            (xi, yi), (xj, yj) = batches[order[k]], batches[order[(k + 1) % 2]]
            out = algo.predict(lam * xi + (1 - lam) * xj)
            expected += lam * F.cross_entropy(out, yi).item() + (1 - lam) * F.cross_entropy(out, yj).item()
    torch.manual_seed(5)
    np.random.seed(5)
    assert algo.update(batches)["loss"].item() == pytest.approx(expected / 2, rel=1e-5)


def test_draws_equal_domainbeds():
    assert_draws("mixup", "RotatedMNIST", 0, 0, {"mixup_alpha": 0.2})
    assert_draws("mixup", "RotatedMNIST", 1, 0, {"mixup_alpha": 0.6313491980790861})
    assert_draws("mixup", "PACS", 2, 1, {"mixup_alpha": 7.173755843828315})
