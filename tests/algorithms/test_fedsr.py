"""FedSR pinned to the reference (atuannguyen/FedSR, src/methods/FedSR.py `train_client` and base.py
`featurize`/`forward`): z's parameters are a linear layer's 2·z_dim outputs, mu the first half, sigma the
softplus of the second; one reparameterised draw in training; regL2R = mean ||z||_2 (norm, not squared);
regCMI = KL(N(C·mu, C·sigma) || N(r_mu[y], softplus(r_sigma)[y])) summed over dimensions, batch mean, with
r_mu = 0, r_sigma = 1, C = 1 at the start; objective CE + L2R_coeff·L2R + CMI_coeff·CMI (defaults 1e-2,
5e-4); eval averages the softmax of num_samples = 20 draws and returns its log. The penalties are
checked against hand values and against torch.distributions' closed-form KL on identical tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributions, nn

from dagrad.algorithms.registry import ALGORITHMS, build, resolve_hparams
from dagrad.algorithms.fedsr import LOCAL_STATE, FedSR, cmi_penalty, l2r_penalty, split_representation


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.n_outputs = 4

    def forward(self, x):
        return self.linear(x)


def _fedsr(**overrides) -> FedSR:
    torch.manual_seed(0)
    hparams = resolve_hparams("fedsr", overrides, hparams_seed=0, small_images=True)
    return build("fedsr", hparams, Tiny(), num_classes=3, num_domains=2)


def test_split_is_mean_and_softplus():
    params = torch.tensor([[1.0, -2.0, 0.0, math.log(math.e - 1)]])
    mu, sigma = split_representation(params, 2)
    assert mu.tolist() == [[1.0, -2.0]]
    assert sigma[0].tolist() == pytest.approx([math.log(2.0), 1.0])
    with pytest.raises(ValueError, match=r"expected \(batch, 4\), got \(1, 3\)"):
        split_representation(torch.zeros(1, 3), 2)


def test_l2r_is_the_mean_norm_not_its_square():
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert l2r_penalty(z).item() == 2.5  # (5 + 0) / 2


def test_cmi_by_hand():
    # mu = 1, sigma = 0.5, C = 2 -> N(2, 1); reference N(0, softplus(log(e - 1)) = 1)
    # KL = log 1 - log 1 + (1 + 4) / 2 - 1/2 = 2
    got = cmi_penalty(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([0]),
                      torch.zeros(1, 1), torch.full((1, 1), math.log(math.e - 1)), torch.tensor(2.0))
    assert got.item() == pytest.approx(2.0)


def test_cmi_equals_the_closed_form_kl_with_its_gradients():
    g = torch.Generator().manual_seed(1)
    z_mu = torch.randn(5, 3, generator=g, requires_grad=True)
    z_sigma = (torch.rand(5, 3, generator=g) + 0.2).requires_grad_()
    y = torch.tensor([0, 2, 1, 2, 0])
    r_mu = torch.randn(3, 3, generator=g, requires_grad=True)
    r_sigma = torch.randn(3, 3, generator=g, requires_grad=True)
    scale = torch.tensor(1.3, requires_grad=True)
    ours = cmi_penalty(z_mu, z_sigma, y, r_mu, r_sigma, scale)
    ours_grads = torch.autograd.grad(ours, [z_mu, z_sigma, r_mu, r_sigma, scale])
    theirs = distributions.kl_divergence(
        distributions.Normal(z_mu * scale, z_sigma * scale),
        distributions.Normal(r_mu[y], F.softplus(r_sigma)[y]),
    ).sum(1).mean()
    theirs_grads = torch.autograd.grad(theirs, [z_mu, z_sigma, r_mu, r_sigma, scale])
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    for a, b in zip(ours_grads, theirs_grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_defaults_and_registration():
    algorithm = _fedsr()
    assert "fedsr" in ALGORITHMS and isinstance(algorithm, FedSR)
    assert (algorithm.hparams["l2r_coeff"], algorithm.hparams["cmi_coeff"], algorithm.hparams["num_samples"]) == (1e-2, 5e-4, 20)
    assert algorithm.z_dim == 4 and algorithm.head.out_features == 8 and algorithm.classifier.in_features == 4
    assert torch.equal(algorithm.reference_mu, torch.zeros(3, 4))
    assert torch.equal(algorithm.reference_sigma, torch.ones(3, 4)) and algorithm.reference_scale.item() == 1.0
    assert set(LOCAL_STATE) <= set(algorithm.state_dict())
    assert _fedsr(z_dim=6).head.out_features == 12


def test_objective_is_cross_entropy_plus_the_weighted_penalties():
    algorithm = _fedsr(l2r_coeff=0.1, cmi_coeff=0.01)
    x, y = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(7)
    total, stats = algorithm.objective(x, y)
    # the same computation written out from the reference's formulas, with the same draw
    params = algorithm.head(algorithm.featurizer(x))
    mu, sigma = params[:, :4], torch.log1p(torch.exp(params[:, 4:]))
    torch.manual_seed(7)
    z = mu + sigma * torch.randn_like(mu)
    ce = F.cross_entropy(algorithm.classifier(z), y)
    l2r = torch.sqrt((z ** 2).sum(1)).mean()
    kl = distributions.kl_divergence(distributions.Normal(mu, sigma),
                                     distributions.Normal(torch.zeros_like(mu), torch.full_like(mu, math.log1p(math.e))))
    cmi = kl.sum(1).mean()
    assert stats["loss"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert stats["l2r"].item() == pytest.approx(l2r.item(), rel=1e-6)
    assert stats["cmi"].item() == pytest.approx(cmi.item(), rel=1e-5)
    assert total.item() == pytest.approx((ce + 0.1 * l2r + 0.01 * cmi).item(), rel=1e-6)


def test_update_trains_the_reference_marginals_only_when_cmi_counts():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with_cmi = _fedsr()
    stats = with_cmi.update([(x[:2], y[:2]), (x[2:], y[2:])])
    assert set(stats) == {"loss", "l2r", "cmi"}
    assert not torch.equal(with_cmi.reference_mu, torch.zeros(3, 4))
    assert with_cmi.reference_scale.item() != 1.0
    without = _fedsr(cmi_coeff=0.0)
    before = without.head.weight.detach().clone()
    without.update([(x, y)])
    assert torch.equal(without.reference_mu, torch.zeros(3, 4)) and without.reference_scale.item() == 1.0
    assert not torch.equal(without.head.weight, before)


def test_eval_prediction_averages_draws_deterministically():
    algorithm = _fedsr(num_samples=5).eval()
    x = torch.randn(4, 3)
    state = torch.get_rng_state()
    first = algorithm.predict(x)
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left alone
    assert torch.equal(first, algorithm.predict(x))
    mu, sigma = algorithm.represent(x)
    noise = torch.randn((5, 4, 4), generator=torch.Generator().manual_seed(0))
    expected = torch.log(torch.softmax(algorithm.classifier(mu + sigma * noise), -1).mean(0))
    assert torch.allclose(first, expected, atol=1e-6)
    assert torch.allclose(first.exp().sum(1), torch.ones(4))
    assert algorithm.train().predict(x).shape == (4, 3)
