"""SAND-mask: the smooth mask from its definition; DomainBed's draws."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.domainbed_draws import assert_draws

from dagrad.algorithms.sandmask import sand_mask


def test_mask_is_a_clipped_tanh_of_agreement_over_variance():
    grads = [torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, 1.0, 1.0]), torch.tensor([3.0, -1.0, 2.0])]
    tau, k = 0.5, 0.2
    stacked = torch.stack(grads)
    var = stacked.var(0).tolist()  # 1, 7/3, 1
    agreement = [1.0, 1 / 3, 1.0]
    mask = [max(0.0, math.tanh(k / v * (a - tau))) for v, a in zip(var, agreement)]  # the middle one is 0
    mean = stacked.mean(0).tolist()
    scale = 1.0 / (1e-10 + sum(mask) / 3)
    assert sand_mask(grads, tau, k).tolist() == pytest.approx([m * g * scale for m, g in zip(mask, mean)], rel=1e-6)
    assert mask[1] == 0.0


def test_one_environment_counts_its_nan_variance_as_tiny():
    got = sand_mask([torch.tensor([0.5, -0.25])], 0.5, 1.0)  # variance NaN -> 1e-17: the mask saturates at 1
    assert got.tolist() == pytest.approx([0.5, -0.25])


def test_draws_equal_domainbeds():
    assert_draws("sandmask", "PACS", 0, 0, {"tau": 1.0, "k": 10.0})
    assert_draws("sandmask", "RotatedMNIST", 1, 0, {"tau": 0.3934322275531539, "k": 1109.9255081776537})
    assert_draws("sandmask", "PACS", 2, 1, {"tau": 0.004876851057336373, "k": 7.358784897816712})
