"""Transfer: the loss gap, the projection onto the ball, one update against its definition (gda off and
on), DomainBed's draws."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.transfer import classifier_distance, project_to_ball


def test_projection_scales_the_offset_onto_the_ball():
    centre, adv = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        centre.weight.copy_(torch.tensor([[1.0, 1.0]]))
        centre.bias.fill_(0.0)
        adv.weight.copy_(torch.tensor([[4.0, 1.0]]))
        adv.bias.fill_(4.0)  # offset (3, 0, 4): distance 5
    assert classifier_distance(adv, centre).item() == pytest.approx(5.0)
    project_to_ball(adv, centre, 2.0)
    assert adv.weight.flatten().tolist() == pytest.approx([1.0 + 1.2, 1.0]) and adv.bias.item() == pytest.approx(1.6)
    project_to_ball(adv, centre, 3.0)  # inside: unchanged
    assert adv.bias.item() == pytest.approx(1.6)


def _setup(**overrides):
    hp = resolve_hparams("transfer", {"d_steps_per_g": 2, "delta": 0.01, **overrides}, 0, small_images=True)
    algo = build("transfer", hp, featurizer(), 3, 3)
    g = torch.Generator().manual_seed(6)
    return algo, [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(3)]


def test_update_ends_with_the_adversary_in_the_ball_around_the_classifier():
    algo, batches = _setup(lr_d=1.0)  # large ascent steps: the adversary leaves the ball and is projected back
    ref = copy.deepcopy(algo)
    algo.update(batches)
    assert classifier_distance(algo.adv_classifier, algo.classifier).item() == pytest.approx(0.01, rel=1e-4)
    assert not torch.equal(ref.classifier.weight, algo.classifier.weight)


def test_gda_leaves_featurizer_and_classifier_where_they_were():
    algo, batches = _setup(gda=True)
    ref = copy.deepcopy(algo)
    algo.update(batches)
    assert all(torch.equal(a, b) for a, b in zip(ref.network.parameters(), algo.network.parameters()))
    assert not torch.equal(ref.adv_classifier.weight, algo.adv_classifier.weight)


def test_gap_is_max_minus_min_of_the_environment_risks():
    algo, batches = _setup()
    with torch.no_grad():
        risks = [F.cross_entropy(algo.adv_classifier(algo.featurizer(x)), y).item() for x, y in batches]
        assert algo.loss_gap(batches).item() == pytest.approx(max(risks) - min(risks), rel=1e-6)


def test_draws_equal_domainbeds():
    assert_draws("transfer", "RotatedMNIST", 0, 0, {"t_lambda": 1.0, "delta": 2.0, "d_steps_per_g": 10,
                                                     "weight_decay_d": 0.0, "gda": False, "beta1": 0.5, "lr_d": 0.001})
    assert_draws("transfer", "RotatedMNIST", 1, 0, {
        "t_lambda": 0.26535225943004515, "delta": 2.702212143805776, "d_steps_per_g": 1,
        "weight_decay_d": 0.00010096814830489473, "gda": True, "beta1": 0.5, "lr_d": 6.700771289296927e-05})
    assert_draws("transfer", "PACS", 2, 1, {
        "t_lambda": 0.03936098719701496, "delta": 2.022705984009199, "d_steps_per_g": 2,
        "weight_decay_d": 2.8693364496589596e-05, "gda": True, "beta1": 0.0, "lr_d": 0.0019609074311552287})
