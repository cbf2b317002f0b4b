"""GroupDRO: the q update from Algorithm 1, q kept out of sampled epochs, DomainBed's draws."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.groupdro import update_group_weights
from dagrad.gradsamp.history import floating_buffers, trainable


def test_q_update_is_exponentiated_and_normalised():
    q = torch.ones(3, dtype=torch.float64)
    update_group_weights(q, torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), 0.1)
    z = math.exp(0.05) + math.exp(0.1) + math.exp(0.2)
    assert q.tolist() == pytest.approx([math.exp(0.05) / z, math.exp(0.1) / z, math.exp(0.2) / z], rel=1e-12)
    update_group_weights(q, torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64), 0.1)  # equal losses: q unchanged
    assert q.tolist() == pytest.approx([math.exp(0.05) / z, math.exp(0.1) / z, math.exp(0.2) / z], rel=1e-12)


def test_loss_is_the_q_weighted_risk_and_q_is_state_not_drawn():
    hp = resolve_hparams("groupdro", {"groupdro_eta": 0.5}, 0, small_images=True)
    algo = build("groupdro", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(2)]
    with torch.no_grad():
        risks = torch.stack([torch.nn.functional.cross_entropy(algo.predict(x), y) for x, y in batches])
    stats = algo.update(batches)
    q = torch.exp(0.5 * risks) / torch.exp(0.5 * risks).sum()
    assert algo.q.tolist() == pytest.approx(q.tolist(), rel=1e-6)
    assert stats["loss"].item() == pytest.approx(torch.dot(risks, q).item(), rel=1e-6)
    assert "q" in algo.state_dict() and "q" not in floating_buffers(algo) and "q" in algo.state_rules
    assert set(trainable(algo)) == {n for n, _ in algo.named_parameters()}


def test_draws_equal_domainbeds():
    assert_draws("groupdro", "RotatedMNIST", 0, 0, {"groupdro_eta": 0.01})
    assert_draws("groupdro", "RotatedMNIST", 1, 0, {"groupdro_eta": 0.01297606872689568})
    assert_draws("groupdro", "PACS", 2, 1, {"groupdro_eta": 0.005213293019059593})
