"""RDM: the risk-distribution penalties from their definitions, the warm-up switch with its Adam restart,
DomainBed's dataset-dependent draws and batch sizes."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.rdm import BANDWIDTHS, rdm_penalties, risk_mmd


def _kernel_mean(a: list[float], b: list[float]) -> float:
    return sum(math.exp(-g * (x - y) ** 2) for x in a for y in b for g in BANDWIDTHS) / (len(a) * len(b))


def _var(v: list[float]) -> float:
    m = sum(v) / len(v)
    return sum((x - m) ** 2 for x in v) / (len(v) - 1)


def test_penalties_from_their_definitions():
    per_example = [torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64), torch.tensor([1.5, 0.1, 2.0], dtype=torch.float64)]
    env = torch.stack([r.mean() for r in per_example])
    erm, matching, variance = rdm_penalties(env, per_example)
    worst, every = [1.5, 0.1, 2.0], [0.2, 0.4, 0.9, 1.5, 0.1, 2.0]  # environment 1 has the larger mean risk
    assert erm.item() == pytest.approx((0.5 + 1.2) / 2)
    expected = _kernel_mean(worst, worst) + _kernel_mean(every, every) - 2 * _kernel_mean(worst, every)
    assert matching.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert variance.item() == pytest.approx(_var(every) + _var(worst), rel=1e-12)
    assert risk_mmd(torch.tensor([0.5, 0.7]), torch.tensor([0.5, 0.7])).item() == pytest.approx(0.0, abs=1e-6)


def test_penalties_switch_on_with_the_new_learning_rate():
    hp = resolve_hparams("rdm", {"rdm_penalty_anneal_iters": 1, "rdm_lr": 1e-5, "rdm_lambda": 2.0,
                                 "variance_weight": 0.5}, 0, small_images=True)
    algo = build("rdm", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(8)
    batches = [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]
    for k in range(2):
        stats = algo.update(batches)
        weights = (0.0, 0.0) if k == 0 else (2.0, 0.5)
        expected = stats["nll"] + weights[0] * stats["matching_penalty"] + weights[1] * stats["variance_penalty"]
        assert stats["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
        assert algo.optimizer.param_groups[0]["lr"] == (1e-3 if k == 0 else 1e-5)
    assert int(algo.optimizer.state[algo.classifier.weight]["step"]) == 1  # Adam restarted at the switch


def test_draws_equal_domainbeds():
    assert_draws("rdm", "RotatedMNIST", 0, 0, {"rdm_lambda": 5.0, "rdm_penalty_anneal_iters": 1500,
                                                "variance_weight": 0.004, "rdm_lr": 1.5e-05, "batch_size": 64})
    assert_draws("rdm", "RotatedMNIST", 1, 0, {"rdm_lambda": 9.313185094706313, "rdm_penalty_anneal_iters": 1092,
                                                "variance_weight": 0.004685630281242425,
                                                "rdm_lr": 1.5055122785774706e-05, "batch_size": 372})
    assert_draws("rdm", "PACS", 0, 0, {"rdm_lambda": 5.0, "batch_size": 88})
    assert_draws("rdm", "PACS", 2, 1, {"rdm_lambda": 4.940964185600834, "rdm_penalty_anneal_iters": 1164,
                                       "variance_weight": 0.0011782602840881265, "rdm_lr": 1.1532437316631229e-05,
                                       "batch_size": 84})
    assert_draws("rdm", "DomainNet", 0, 0, {"rdm_lambda": 0.5, "rdm_penalty_anneal_iters": 2400,
                                            "variance_weight": 0.0, "batch_size": 40})
    assert_draws("rdm", "DomainNet", 3, 0, {"rdm_lambda": 0.38488766097086113, "rdm_penalty_anneal_iters": 2040,
                                            "rdm_lr": 9.981135590012274e-06, "batch_size": 55})
    assert_draws("rdm", "OfficeHome", 4, 1, {"rdm_lambda": 3.9237577190432944, "rdm_penalty_anneal_iters": 1536,
                                             "variance_weight": 0.0, "batch_size": 85})
    assert_draws("rdm", "TerraIncognita", 5, 0, {"rdm_lambda": 1.4624631466037545, "rdm_penalty_anneal_iters": 2583,
                                                 "variance_weight": 0.0, "batch_size": 41})
    assert_draws("rdm", "VLCS", 6, 2, {"rdm_lambda": 9.481736242984761, "variance_weight": 0.002183168960659874,
                                       "batch_size": 84, "lr": 1.3982210782681486e-05})
