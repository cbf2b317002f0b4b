"""Gradient-reversal DANN: the reversal layer, the ramp, DA (source vs target) and the DG fallback."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dagrad.algorithms import registry
from dagrad.algorithms.dann_grl import DANNGRL, grl_coefficient, reverse_gradient



@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_reversal_is_identity_forward_and_negated_scaled_gradient_backward(coeff):
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, coeff)
    assert torch.equal(y, x)
    (y * torch.arange(12.0).view(4, 3)).sum().backward()
    assert torch.allclose(x.grad, -coeff * torch.arange(12.0).view(4, 3))
    x.grad = None
    reverse_gradient(x, coeff).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -coeff))


def test_ramp_values():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661
    assert grl_coefficient(1.0) == pytest.approx(0.9999092, abs=1e-7)
    assert grl_coefficient(0.5, max_coeff=0.1) == pytest.approx(0.098661, abs=1e-6)
    assert grl_coefficient(-1.0) == 0.0 and grl_coefficient(2.0) == grl_coefficient(1.0)


def make(seed: int = 0, **overrides) -> DANNGRL:
    torch.manual_seed(seed)
    f = nn.Sequential(nn.Flatten(), nn.Linear(4, 8))
    f.n_outputs = 8
    hparams = registry.resolve_hparams("dann_grl", {"disc_width": 16, **overrides}, 0, small_images=True)
    return DANNGRL(f, num_classes=3, num_domains=2, hparams=hparams)


def data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    source = [(torch.randn(6, 4, generator=g) + k, torch.randint(0, 3, (6,), generator=g)) for k in range(2)]
    return source, [torch.randn(6, 4, generator=g) * 2 - 3]


def test_target_inputs_change_the_update_and_progress_sets_the_coefficient():
    source, target = data()
    a, b = make(), make()
    a.progress = b.progress = 0.5
    sa = a.update(source, target)
    sb = b.update(source, [target[0] + 5.0])
    assert sa["grl_coeff"] == pytest.approx(grl_coefficient(0.5))
    assert sa["domain_loss"] != sb["domain_loss"]
    assert not torch.equal(a.featurizer[1].weight, b.featurizer[1].weight)
    assert a.environment_head.weight.grad is None and a.source_target_head.weight.grad is not None
    assert DANNGRL.uses_unlabeled


def test_featurizer_gets_no_domain_gradient_at_progress_zero():
    source, target = data()
    a, b = make(), make()
    a.update(source, target)
    b.update(source, [target[0] + 5.0])  # different target, but the reversal coefficient is 0
    assert torch.equal(a.featurizer[1].weight, b.featurizer[1].weight)
    assert not torch.equal(a.discriminator[0].weight, b.discriminator[0].weight)


def test_dg_fallback_uses_an_environment_discriminator():
    source, _ = data()
    model = make()
    model.progress = 1.0
    stats = model.update(source)
    assert set(stats) == {"loss", "domain_loss", "domain_acc", "grl_coeff"}
    assert model.source_target_head.weight.grad is None and model.environment_head.weight.grad is not None
    assert model.environment_head.out_features == 2


def test_discriminator_separates_source_from_target_without_reversal():
    source, target = data()
    model = make(lr=1e-2)
    for _ in range(60):  # progress 0: no reversal, the discriminator just learns
        stats = model.update(source, target)
    assert stats["domain_acc"] > 0.9


def test_prediction_shape_and_hyperparameters():
    model = make()
    assert model.predict(torch.randn(5, 4)).shape == (5, 3)
    defaults = registry.resolve_hparams("dann_grl", {}, 0, small_images=False)
    assert defaults["grl_lambda"] == 1.0 and defaults["disc_width"] == 1024 and defaults["lr"] == 5e-5
    assert set(model.optimizers()) == {"adam"}
    n_opt = sum(p.numel() for g in model.optimizer.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in model.parameters())
