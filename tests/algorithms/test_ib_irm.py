"""IB-IRM: IRM's and the bottleneck's warm-ups, each on its own; DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams


def test_each_penalty_has_its_own_warm_up():
    hp = resolve_hparams("ib_irm", {"irm_penalty_anneal_iters": 1, "irm_lambda": 5.0, "ib_penalty_anneal_iters": 2,
                                    "ib_lambda": 3.0}, 0, small_images=True)
    algo = build("ib_irm", hp, featurizer(), 3, 2)
    batches = [(torch.randn(6, 6), torch.randint(0, 3, (6,))) for _ in range(2)]
    for irm_w, ib_w in [(1.0, 0.0), (5.0, 0.0), (5.0, 3.0)]:
        s = algo.update(batches)
        expected = s["nll"] + irm_w * s["irm_penalty"] + ib_w * s["ib_penalty"]
        assert s["loss"].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


def test_draws_equal_domainbeds():
    assert_draws("ib_irm", "RotatedMNIST", 1, 0, {"irm_lambda": 65030.52212762795, "irm_penalty_anneal_iters": 2,
                                                  "ib_lambda": 2.661822006035993, "ib_penalty_anneal_iters": 1222})
    assert_draws("ib_irm", "PACS", 2, 1, {"irm_lambda": 0.5404833338507985, "irm_penalty_anneal_iters": 1,
                                          "ib_lambda": 60.89776169157783, "ib_penalty_anneal_iters": 352})
