"""Statistical and exactness tests of every GradSamp sampler on large tensors with fixed seeds."""

from __future__ import annotations

import pytest
import torch

from dagrad.utils.errors import ConfigError
from dagrad.gradsamp import SAMPLERS
from dagrad.gradsamp.ggd import fit_beta

N = 200_000


def build_sampler(name, **options):
    """The sampler through its registry entry, its options checked (the one way a sampler is built)."""
    return SAMPLERS.build(name, options)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_delta(mu: float = 0.3, sigma: float = 2.0, seed: int = 123) -> torch.Tensor:
    return (mu + sigma * torch.randn(N, generator=gen(seed))).reshape(400, 500)


def test_tensor_sampler_matches_tensor_mean_and_population_std():
    delta = gaussian_delta()
    mu, sigma = delta.double().mean().item(), delta.double().std(correction=0).item()
    step = build_sampler("tensor").draw(delta, gen(1))
    assert step.shape == delta.shape and step.dtype == delta.dtype
    assert abs(step.double().mean().item() - mu) < 0.02  # standard error 2/sqrt(2e5) = 0.0045
    assert abs(step.double().std().item() / sigma - 1) < 0.01
    # forgets which element moved where: no correlation with Delta
    corr = torch.corrcoef(torch.stack([step.reshape(-1), delta.reshape(-1)]))[0, 1].item()
    assert abs(corr) < 0.01


def test_tensor_sampler_reports_population_std_and_handles_one_element():
    s = build_sampler("tensor")
    fit = s.fit(torch.tensor([1.0, 3.0]))
    assert fit == {"mu": 2.0, "sigma": 1.0}  # population std (divisor n), not sqrt(2)
    one = torch.tensor([0.25])
    assert s.fit(one) == {"mu": 0.25, "sigma": 0.0}
    assert torch.equal(s.draw(one, gen()), one)  # sigma = 0: the draw is the mean exactly
    empty = torch.empty(0, 3)
    assert s.draw(empty, gen()).shape == (0, 3)


def test_element_sampler_standardised_residual_is_standard_normal():
    delta = gaussian_delta(mu=0.0, sigma=1.0)
    c = 0.5
    step = build_sampler("element", c=c).draw(delta, gen(2)).double()
    z = (step - delta.double()) / (c * delta.double().abs())
    assert abs(z.mean().item()) < 0.01
    assert abs(z.std().item() - 1) < 0.01
    # keeps each element's direction: strongly correlated with Delta
    assert torch.corrcoef(torch.stack([step.reshape(-1), delta.double().reshape(-1)]))[0, 1].item() > 0.85


def test_element_sampler_with_zero_c_is_extrapolation_and_zero_delta_stays_zero():
    delta = gaussian_delta()
    assert torch.equal(build_sampler("element", c=0.0).draw(delta, gen()), delta)
    zeros = torch.zeros(10)
    assert torch.equal(build_sampler("element").draw(zeros, gen()), zeros)


@pytest.mark.parametrize("beta", [1.0, 2.0, 4.0])
def test_ggd_with_given_beta_matches_mean_std_and_shape(beta):
    delta = gaussian_delta(mu=-0.5, sigma=0.1)
    mu, sigma = delta.double().mean().item(), delta.double().std(correction=0).item()
    step = build_sampler("ggd", beta=beta).draw(delta, gen(3)).double()
    assert abs(step.mean().item() - mu) < 0.002
    assert abs(step.std().item() / sigma - 1) < 0.015
    assert abs(fit_beta(step) - beta) < 0.1 * beta


@pytest.mark.parametrize("kind,expected", [("laplace", 1.0), ("gaussian", 2.0)])
def test_ggd_fit_recovers_known_shape(kind, expected):
    g = gen(7)
    if kind == "laplace":
        delta = torch.empty(N).exponential_(generator=g) * torch.where(torch.rand(N, generator=g) < 0.5, -1.0, 1.0)
        delta = 0.2 + 0.05 * delta
    else:
        delta = 0.2 + 0.05 * torch.randn(N, generator=g)
    sampler = build_sampler("ggd")
    fit = sampler.fit(delta)
    assert abs(fit["beta"] - expected) < 0.08 * expected
    step = sampler.draw(delta, gen(8)).double()
    assert abs(step.mean().item() - fit["mu"]) < 0.001
    assert abs(step.std().item() / fit["sigma"] - 1) < 0.015
    assert abs(fit_beta(step) - expected) < 0.1 * expected


def test_ggd_fit_is_clipped_and_degenerate_tensors_are_exact():
    assert fit_beta(torch.tensor([0.0] * 999 + [1000.0])) == pytest.approx(0.3)  # extremely heavy-tailed
    assert fit_beta(torch.tensor([-1.0, 1.0] * 1000)) == pytest.approx(8.0)  # two-point: flatter than uniform
    const = torch.full((50,), 0.7)
    assert torch.equal(build_sampler("ggd").draw(const, gen()), const)
    one = torch.tensor([[-0.1]])
    assert torch.equal(build_sampler("ggd").draw(one, gen()), one)


def test_extrapolate_and_skip_are_exact():
    delta = gaussian_delta()
    assert torch.equal(build_sampler("extrapolate").draw(delta, gen()), delta)
    skip = build_sampler("skip").draw(delta, gen())
    assert torch.equal(skip, torch.zeros_like(delta))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_draw_other_seed_other_draw(name):
    delta = gaussian_delta()[:20]
    sampler = build_sampler(name)
    a, b, c = (sampler.draw(delta, gen(s)) for s in (5, 5, 6))
    assert torch.equal(a, b)
    if name in ("tensor", "element", "ggd"):
        assert not torch.equal(a, c)


def test_draw_never_touches_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for name in SAMPLERS:
        build_sampler(name).draw(gaussian_delta()[:10], gen())
    assert torch.equal(torch.rand(3), expected)


def test_build_sampler_rejects_unknown_names_and_parameters():
    with pytest.raises(ConfigError, match="choose one of: element, ema, extrapolate, ggd, shrink, skip, tensor"):
        build_sampler("gaussian")
    with pytest.raises(ConfigError, match="c: not an option of tensor; allowed: scale"):
        build_sampler("tensor", c=0.5)
    with pytest.raises(ConfigError, match="c: -1.0 is out of range; allowed: a finite number >= 0"):
        build_sampler("element", c=-1.0)
    with pytest.raises(ConfigError, match="beta: 0.0 is out of range; allowed: a finite number > 0 or null"):
        build_sampler("ggd", beta=0.0)
