"""CausIRL-CORAL and CausIRL-MMD: the random head/tail split and the penalty between the halves;
DomainBed's draws (both share CORAL's mmd_gamma)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.causirl import split_heads_and_tails
from dagrad.algorithms.coral import coral_penalty
from dagrad.algorithms.mmd import mmd


def test_split_cuts_each_environment_at_a_numpy_randint():
    feats = [torch.arange(10.0).view(5, 2), torch.arange(100.0, 108.0).view(4, 2)]
    np.random.seed(3)
    cuts = [np.random.randint(0, 5), np.random.randint(0, 4)]
    np.random.seed(3)
    first, second = split_heads_and_tails(feats)
    assert torch.equal(first, torch.cat([feats[0][:cuts[0]], feats[1][:cuts[1]]]))
    assert torch.equal(second, torch.cat([feats[0][cuts[0]:], feats[1][cuts[1]:]]))


@pytest.mark.parametrize("name,distance", [("causirl_coral", lambda a, b: coral_penalty([a, b])), ("causirl_mmd", mmd)])
def test_penalty_is_the_distance_between_the_halves(name, distance):
    algo = build(name, resolve_hparams(name, {}, 0, small_images=True), featurizer(), 3, 2)
    batches = [(torch.randn(6, 6), torch.randint(0, 3, (6,))) for _ in range(2)]
    with torch.no_grad():
        feats = [algo.featurizer(x) for x, _ in batches]
    kinds = set()
    for seed in (0, 1, 11):  # seed 11 cuts the first environment at 1 and the second at 0
        np.random.seed(seed)
        first, second = split_heads_and_tails(feats)
        np.random.seed(seed)
        penalty = copy.deepcopy(algo).update(batches)["penalty"].item()
        if len(first) > 1 and len(second) > 1:
            assert penalty == pytest.approx(distance(first, second).item(), rel=1e-6)
            kinds.add("distance")
        else:  # a half with fewer than two rows: no penalty
            assert penalty == 0.0
            kinds.add("zero")
    assert kinds == {"distance", "zero"}


@pytest.mark.parametrize("name", ["causirl_coral", "causirl_mmd"])
def test_draws_equal_domainbeds(name):
    assert_draws(name, "RotatedMNIST", 1, 0, {"mmd_gamma": 1.4227570299330277})
    assert_draws(name, "PACS", 2, 1, {"mmd_gamma": 0.17339913420118555})
