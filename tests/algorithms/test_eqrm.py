"""EQRM: the KDE bandwidth and quantile from their definitions, the burn-in switch with its Adam reset and
learning rate, DomainBed's draws."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.eqrm import kde_bandwidth, kde_quantile

RISKS = torch.tensor([0.9, 0.2, 0.5, 1.4], dtype=torch.float64)


def test_bandwidth_is_the_gauss_optimal_rule():
    mean = sum(RISKS.tolist()) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in RISKS.tolist()) / 3)
    assert kde_bandwidth(RISKS).item() == pytest.approx(1.06 * std * 4 ** -0.2, rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 0.75, 0.95])
def test_quantile_is_where_the_kde_cdf_reaches_q(q):
    k = kde_quantile(RISKS, torch.tensor(q, dtype=torch.float64)).item()
    bw = kde_bandwidth(RISKS).item()
    cdf = sum(0.5 * (1 + math.erf((k - r) / (bw * math.sqrt(2)))) for r in RISKS.tolist()) / 4
    assert cdf == pytest.approx(q, abs=1e-7)
    assert k > RISKS.min().item() - 3 * bw


def test_loss_switches_after_the_burn_in_with_the_new_learning_rate():
    hp = resolve_hparams("eqrm", {"eqrm_burnin_iters": 2, "eqrm_lr": 1e-5}, 0, small_images=True)
    algo = build("eqrm", hp, featurizer(), 3, 3)
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(3)]
    for k in range(4):
        with torch.no_grad():
            risks = torch.stack([torch.nn.functional.cross_entropy(algo.predict(x), y) for x, y in batches])
        stats = algo.update(batches)
        expected = risks.mean() if k < 2 else kde_quantile(risks.double(), torch.tensor(0.75, dtype=torch.float64))
        assert stats["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
        assert algo.optimizer.param_groups[0]["lr"] == (1e-3 if k < 2 else 1e-5)
        if k == 2:  # Adam restarted at the switch
            assert int(algo.optimizer.state[algo.classifier.weight]["step"]) == 1
    assert int(algo.update_count) == 4


def test_draws_equal_domainbeds():
    assert_draws("eqrm", "RotatedMNIST", 0, 0, {"eqrm_quantile": 0.75, "eqrm_burnin_iters": 2500, "eqrm_lr": 1e-06})
    assert_draws("eqrm", "RotatedMNIST", 1, 0, {"eqrm_quantile": 0.7335553271795177,
                                                 "eqrm_burnin_iters": 423.2761238000087,
                                                 "eqrm_lr": 4.377815305398272e-06, "batch_size": 372})
    assert_draws("eqrm", "PACS", 2, 1, {"eqrm_quantile": 0.9632656092620469, "eqrm_burnin_iters": 519.3498729183152,
                                        "eqrm_lr": 2.527390923004033e-07, "weight_decay": 3.539788355410888e-06})
