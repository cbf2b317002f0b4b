"""SD: ERM plus sd_reg times the mean squared logit; DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams


def test_penalty_is_the_mean_squared_logit():
    algo = build("sd", resolve_hparams("sd", {"sd_reg": 0.5}, 0, small_images=True), featurizer(), 3, 2)
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        logits = algo.predict(x)
    stats = algo.update(batches)
    assert stats["penalty"].item() == pytest.approx((logits ** 2).mean().item(), rel=1e-6)
    assert stats["loss"].item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_draws_equal_domainbeds():
    assert_draws("sd", "RotatedMNIST", 0, 0, {"sd_reg": 0.1})
    assert_draws("sd", "RotatedMNIST", 1, 0, {"sd_reg": 0.00032197228403631824})
    assert_draws("sd", "PACS", 2, 1, {"sd_reg": 0.03326374058298466})
