"""SagNet: the style and content randomisations from their definitions, three optimizers, DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.sagnet import randomize


def _stats(x):
    return x.mean(-1, keepdim=True), x.var(-1, keepdim=True)


def test_style_randomisation_mixes_each_examples_statistics_with_a_random_others():
    x = torch.randn(5, 8, dtype=torch.float64) * torch.arange(1, 6, dtype=torch.float64)[:, None]
    torch.manual_seed(0)
    alpha = torch.rand(5, 1, dtype=torch.float32).double()
    swap = torch.randperm(5)
    torch.manual_seed(0)
    out = randomize(x, "style")
    mean, var = _stats(x)
    content = (x - mean) / (var + 1e-5).sqrt()
    new_mean = alpha * mean + (1 - alpha) * mean[swap]
    new_var = alpha * var + (1 - alpha) * var[swap]
    assert torch.allclose(out, content * (new_var + 1e-5).sqrt() + new_mean, atol=1e-12)


def test_content_randomisation_keeps_the_style_and_swaps_the_content():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    torch.manual_seed(1)
    torch.rand(2, 1)
    swap = torch.randperm(2)
    torch.manual_seed(1)
    out = randomize(x, "content").view(2, 3, -1)
    flat = x.view(2, 3, -1)
    mean, var = _stats(flat)
    content = (flat - mean) / (var + 1e-5).sqrt()
    assert torch.allclose(out, content[swap] * (var + 1e-5).sqrt() + mean, atol=1e-12)


def test_update_steps_three_optimizers_and_predicts_with_the_content_net():
    algo = build("sagnet", resolve_hparams("sagnet", {}, 0, small_images=True), featurizer(), 3, 2)
    before = {k: [p.clone() for p in m.parameters()] for k, m in
              (("f", algo.network_f), ("c", algo.network_c), ("s", algo.network_s))}
    algo.update([(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)])
    assert set(algo.optimizers()) == {"featurizer", "content", "style"}
    for key, module in (("f", algo.network_f), ("c", algo.network_c), ("s", algo.network_s)):
        assert any(not torch.equal(a, b) for a, b in zip(before[key], module.parameters())), key
    x = torch.randn(3, 6)
    assert torch.equal(algo.predict(x), algo.network_c(algo.network_f(x)))


def test_draws_equal_domainbeds():
    assert_draws("sagnet", "RotatedMNIST", 0, 0, {"sag_w_adv": 0.1})
    assert_draws("sagnet", "RotatedMNIST", 1, 0, {"sag_w_adv": 0.010638215739319792})
    assert_draws("sagnet", "PACS", 2, 1, {"sag_w_adv": 1.133094351564964})
