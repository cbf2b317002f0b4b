"""IB-ERM: the bottleneck penalty from its definition and its warm-up (weight 0 first); DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.ib_erm import ib_penalty


def test_penalty_is_the_mean_feature_variance():
    f = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 1.0]], dtype=torch.float64)
    assert ib_penalty(f).item() == pytest.approx((4.0 + 1.0) / 2)


def test_weight_is_zero_before_the_warm_up_and_ib_lambda_after():
    hp = resolve_hparams("ib_erm", {"ib_penalty_anneal_iters": 1, "ib_lambda": 10.0}, 0, small_images=True)
    algo = build("ib_erm", hp, featurizer(), 3, 2)
    batches = [(torch.randn(5, 6), torch.randint(0, 3, (5,))) for _ in range(2)]
    first, second = algo.update(batches), algo.update(batches)
    assert first["loss"].item() == pytest.approx(first["nll"].item())
    assert second["loss"].item() == pytest.approx(second["nll"].item() + 10 * second["ib_penalty"].item(), rel=1e-5)
    assert algo.updates_done == 2


def test_draws_equal_domainbeds():
    assert_draws("ib_erm", "RotatedMNIST", 0, 0, {"ib_lambda": 100.0, "ib_penalty_anneal_iters": 500})
    assert_draws("ib_erm", "RotatedMNIST", 1, 0, {"ib_lambda": 2.661822006035993, "ib_penalty_anneal_iters": 1222})
    assert_draws("ib_erm", "PACS", 2, 1, {"ib_lambda": 60.89776169157783, "ib_penalty_anneal_iters": 352})
