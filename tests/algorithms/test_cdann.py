"""CDANN: the class-balanced discriminator loss from its definition, the conditional input, DomainBed's draws."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.cdann import class_balanced_loss


def test_class_balanced_loss_weights_each_example_by_its_class_count():
    out = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [1.0, -1.0]], dtype=torch.float64)
    domains = torch.tensor([0, 1, 1, 0])
    y = torch.tensor([0, 2, 0, 0])  # one-hot width 3 (class 1 absent), counts 3, 0, 1
    ce = F.cross_entropy(out, domains, reduction="none")
    expected = ce[0] / 9 + ce[1] / 3 + ce[2] / 9 + ce[3] / 9
    # DomainBed casts the weights to float32 (`.float()`), so float32 precision
    assert class_balanced_loss(out, domains, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_discriminator_reads_features_plus_class_embedding():
    algo = build("cdann", resolve_hparams("cdann", {}, 0, small_images=True), featurizer(), 3, 2)
    z, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 1])
    assert torch.equal(algo.discriminator_input(z, y), z + algo.class_embeddings.weight[y])
    stats = algo.update([(torch.randn(4, 6), torch.tensor([0, 1, 2, 1])), (torch.randn(4, 6), torch.tensor([2, 2, 0, 1]))])
    assert "gen_loss" in stats and math.isfinite(stats["loss"].item())  # update 1 is a generator step


def test_draws_equal_domainbeds():
    assert_draws("cdann", "RotatedMNIST", 1, 0, {
        "lambda": 3.500347568342894, "weight_decay_d": 0.00010096814830489473, "d_steps_per_g_step": 7,
        "grad_penalty": 3.044417571888086, "beta1": 0.5, "mlp_width": 255, "mlp_depth": 4, "mlp_dropout": 0.5,
        "lr_g": 0.0015950807441571075, "lr_d": 6.700771289296927e-05, "weight_decay_g": 0.0})
    assert_draws("cdann", "PACS", 2, 1, {
        "lambda": 0.05862153369377938, "weight_decay_d": 2.8693364496589596e-05, "d_steps_per_g_step": 6,
        "grad_penalty": 2.2988257378102737, "beta1": 0.0, "mlp_width": 102, "mlp_depth": 5, "mlp_dropout": 0.5,
        "lr_g": 6.811479426284335e-05, "lr_d": 0.0002209748354955832, "weight_decay_g": 0.00013298723411844766})
