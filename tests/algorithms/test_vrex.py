"""V-REx: the variance penalty from its definition, the warm-up switch, DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.vrex import risk_variance


def test_penalty_is_the_population_variance_of_the_risks():
    mean, var = risk_variance(torch.tensor([0.5, 1.0, 2.5], dtype=torch.float64))
    assert mean.item() == pytest.approx(4.0 / 3)
    assert var.item() == pytest.approx(((0.5 - 4 / 3) ** 2 + (1 - 4 / 3) ** 2 + (2.5 - 4 / 3) ** 2) / 3, rel=1e-12)


def test_weight_switches_after_the_warm_up_and_the_counter_is_kept():
    hp = resolve_hparams("vrex", {"vrex_penalty_anneal_iters": 1, "vrex_lambda": 50.0}, 0, small_images=True)
    algo = build("vrex", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(2)]
    weights = []
    for _ in range(3):
        with torch.no_grad():
            risks = torch.stack([torch.nn.functional.cross_entropy(algo.predict(x), y) for x, y in batches])
        stats = algo.update(batches)
        weights.append(((stats["loss"] - risks.mean()) / stats["penalty"]).item())
    assert weights == pytest.approx([1.0, 50.0, 50.0], rel=1e-3)
    assert algo.updates_done == 3 and int(algo.update_count) == 3


def test_draws_equal_domainbeds():
    assert_draws("vrex", "RotatedMNIST", 0, 0, {"vrex_lambda": 10.0, "vrex_penalty_anneal_iters": 500})
    assert_draws("vrex", "RotatedMNIST", 1, 0, {"vrex_lambda": 3307.1978049278796, "vrex_penalty_anneal_iters": 47})
    assert_draws("vrex", "PACS", 2, 1, {"vrex_lambda": 1.0109861948955867, "vrex_penalty_anneal_iters": 5629})
