"""MMD: the Gaussian kernel sum and pairwise MMD against a float64 numpy computation, DomainBed's draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.domainbed_draws import assert_draws

from dagrad.algorithms.mmd import BANDWIDTHS, gaussian_kernel, mmd, pairwise_penalty


def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return sum(np.exp(-g * d) for g in (0.001, 0.01, 0.1, 1, 10, 100, 1000))


def test_kernel_is_the_sum_over_seven_bandwidths():
    assert BANDWIDTHS == (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    assert gaussian_kernel(torch.tensor(a), torch.tensor(b)).numpy() == pytest.approx(kernel(a, b), rel=1e-10)
    assert gaussian_kernel(torch.tensor(a), torch.tensor(a)).diagonal().tolist() == pytest.approx([7.0] * 5)


def test_pairwise_penalty_is_the_mean_biased_mmd_over_pairs():
    rng = np.random.default_rng(1)
    feats = [rng.normal(loc=k, size=(6, 2)) for k in range(3)]

    def ref(x, y):
        return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()

    expected = (ref(feats[0], feats[1]) + ref(feats[0], feats[2]) + ref(feats[1], feats[2])) / 3
    assert pairwise_penalty([torch.tensor(f) for f in feats]).item() == pytest.approx(expected, rel=1e-10)
    assert mmd(torch.tensor(feats[0]), torch.tensor(feats[0])).item() == pytest.approx(0.0, abs=1e-12)


def test_draws_equal_domainbeds():
    assert_draws("mmd", "RotatedMNIST", 0, 0, {"mmd_gamma": 1.0})
    assert_draws("mmd", "RotatedMNIST", 1, 0, {"mmd_gamma": 1.4227570299330277})
    assert_draws("mmd", "PACS", 2, 1, {"mmd_gamma": 0.17339913420118555})
