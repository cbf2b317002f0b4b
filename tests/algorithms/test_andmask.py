"""AND-mask: the sign-agreement mask and rescaling from the definition; DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
from helpers.domainbed_draws import assert_draws

from dagrad.algorithms.andmask import and_mask


def test_mask_keeps_agreeing_elements_and_rescales_by_the_kept_fraction():
    grads = [torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([2.0, 1.0, 1.0, -0.5]), torch.tensor([3.0, -1.0, 2.0, 1.0])]
    # sign means: 1, -1/3, 1, 1/3 -> with tau 0.9 elements 0 and 2 are kept (half of them)
    got = and_mask(grads, 0.9)
    assert got.tolist() == pytest.approx([2.0 / (0.5 + 1e-10), 0.0, 2.0 / (0.5 + 1e-10), 0.0])
    assert and_mask(grads, 0.3).tolist() == pytest.approx([2.0, -2.0 / 3, 2.0, 1.0 / 3], rel=1e-6)  # all kept


def test_draws_equal_domainbeds():
    assert_draws("andmask", "RotatedMNIST", 1, 0, {"tau": 0.6967161137765769})
    assert_draws("andmask", "PACS", 2, 1, {"tau": 0.5024384255286682})
    assert_draws("andmask", "PACS", 0, 0, {"tau": 1.0})  # DomainBed's default is the integer 1: the same mask
