"""CORAL's penalty against a float64 numpy reference, and the algorithm's DG/DA updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dagrad.algorithms import registry
from dagrad.algorithms.coral import CORAL, coral_penalty
from dagrad.utils.errors import ConfigError



def featurizer(n_in: int = 6, n_out: int = 4) -> nn.Module:
    torch.manual_seed(0)
    f = nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out))
    f.n_outputs = n_out
    return f


def reference_penalty(features: list[np.ndarray]) -> float:
    def stats(f):
        mu = f.mean(0)
        c = (f - mu).T @ (f - mu) / (len(f) - 1)
        return mu, c

    terms = []
    for i in range(len(features)):
        for j in range(i + 1, len(features)):
            (mi, ci), (mj, cj) = stats(features[i]), stats(features[j])
            terms.append(np.mean((mi - mj) ** 2) + np.mean((ci - cj) ** 2))
    return float(np.mean(terms))


@pytest.mark.parametrize("n_envs", [2, 3, 4])
def test_penalty_matches_direct_float64_computation(n_envs):
    rng = np.random.default_rng(n_envs)
    feats = [rng.normal(loc=k, scale=1 + k, size=(7 + k, 5)) for k in range(n_envs)]
    got = coral_penalty([torch.tensor(f) for f in feats])
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(reference_penalty(feats), rel=1e-12)


def test_three_envs_is_the_mean_over_the_three_pairs():
    rng = np.random.default_rng(1)
    a, b, c = (torch.tensor(rng.normal(size=(9, 3))) for _ in range(3))
    pairs = [coral_penalty([a, b]), coral_penalty([a, c]), coral_penalty([b, c])]
    assert coral_penalty([a, b, c]).item() == pytest.approx(sum(p.item() for p in pairs) / 3, rel=1e-12)


def test_identical_features_give_exactly_zero_and_equal_distributions_nearly_zero():
    x = torch.randn(16, 4)
    assert coral_penalty([x, x.clone()]).item() == 0.0
    g = torch.Generator().manual_seed(0)
    big = [torch.randn(20000, 3, generator=g, dtype=torch.float64) for _ in range(2)]
    assert coral_penalty(big).item() < 1e-3


def test_shifted_means_give_the_mean_squared_shift():
    x = torch.randn(32, 4, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    # same centred data -> same covariance, so only the mean term remains
    assert coral_penalty([x, x + shift]).item() == pytest.approx(shift.pow(2).mean().item(), rel=1e-12)


def test_one_environment_has_no_penalty_and_tiny_batches_are_rejected():
    assert coral_penalty([torch.randn(5, 3)]).item() == 0.0
    with pytest.raises(ConfigError, match="batch_size >= 2"):
        coral_penalty([torch.randn(5, 3), torch.randn(1, 3)])
    with pytest.raises(ValueError, match="batch, width"):
        coral_penalty([torch.randn(5)])


def batches(n_envs: int, n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 6, generator=g) + k, torch.randint(0, 3, (n,), generator=g)) for k in range(n_envs)]


def make(mmd_gamma: float = 1.0) -> CORAL:
    hparams = {"lr": 1e-2, "weight_decay": 0.0, "mmd_gamma": mmd_gamma}
    return CORAL(featurizer(), num_classes=3, num_domains=2, hparams=hparams)


def test_update_reports_objective_and_penalty_and_target_joins_alignment():
    mb = batches(2)
    model = make()
    with torch.no_grad():
        feats = [model.featurizer(x) for x, _ in mb]
        target = torch.randn(8, 6) * 3 - 4
        expected_dg = coral_penalty(feats).item()
        expected_da = coral_penalty(feats + [model.featurizer(target)]).item()
    stats = make().update(mb)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in stats.values())
    assert float(stats["penalty"]) == pytest.approx(expected_dg, rel=1e-5)
    stats_da = make().update(mb, [target])
    assert float(stats_da["penalty"]) == pytest.approx(expected_da, rel=1e-5)
    assert float(stats_da["loss"]) == pytest.approx(float(stats["loss"]), rel=1e-6)  # labelled data only
    assert CORAL.uses_unlabeled


def test_penalty_training_shrinks_the_penalty():
    model = make(mmd_gamma=10.0)
    mb = batches(2, n=32)
    first = model.update(mb)["penalty"]
    for _ in range(60):
        last = model.update(mb)["penalty"]
    assert last < 0.2 * first


def test_registered_hyperparameters():
    assert registry.resolve_hparams("coral", {}, 0, small_images=False)["mmd_gamma"] == 1.0
    draws = [registry.resolve_hparams("coral", {}, s, small_images=False)["mmd_gamma"] for s in range(1, 40)]
    assert all(0.1 <= d <= 10 for d in draws) and len(set(draws)) > 30
