"""URM: the output activation, the noise's range, the generator and discriminator losses from their
definitions, DomainBed's draws."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def _setup(**overrides):
    hp = resolve_hparams("urm", {"urm_adv_lambda": 0.2, **overrides}, 0, small_images=True)
    algo = build("urm", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(9)
    return algo, [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]


@pytest.mark.parametrize("output,low,high", [("tanh", -1.0, 1.0), ("relu", 0.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_features_pass_the_activation_and_noise_covers_its_range(output, low, high):
    algo, batches = _setup(urm_generator_output=output)
    x = torch.cat([b[0] for b in batches])
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[output]
    assert torch.equal(algo.featurizer(x), act(algo.featurizer[0](x)))
    torch.manual_seed(0)
    u = torch.rand(8, 4)
    torch.manual_seed(0)
    noise = (algo.noise_high - algo.noise_low) * torch.rand(8, 4) + algo.noise_low
    assert torch.allclose(noise, (high - low) * u + low)


def test_generator_loss_is_ce_plus_lambda_times_bce_towards_noise():
    algo, batches = _setup()
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        f = algo.featurizer(x)
        ce = F.cross_entropy(algo.classifier(f), y).item()
        fooled = sum(_bce(v, 1.0) for v in algo.discriminator(f).squeeze(1).tolist()) / len(f)
    assert algo.update(batches)["loss"].item() == pytest.approx(ce + 0.2 * fooled, rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_discriminator_loss_from_its_definition(smoothing):
    algo, batches = _setup(urm_discriminator_label_smoothing=smoothing)
    f = torch.tanh(torch.randn(8, 4))
    ref = copy.deepcopy(algo)
    torch.manual_seed(3)
    got = algo._discriminator_loss(f).item()
    torch.manual_seed(3)
    noise = 2 * torch.rand(8, 4) - 1
    if smoothing:
        true_y = (smoothing * torch.rand(8) + 1 - smoothing).tolist()
        fake_y = (smoothing * torch.rand(8)).tolist()
        assert min(true_y) >= 1 - smoothing and max(fake_y) <= smoothing
    else:
        true_y, fake_y = [1.0] * 8, [0.0] * 8
    with torch.no_grad():
        n_logits, f_logits = ref.discriminator(noise).squeeze(1).tolist(), ref.discriminator(f).squeeze(1).tolist()
    expected = (sum(_bce(v, t) for v, t in zip(n_logits, true_y)) / 8
                + 0.2 * sum(_bce(v, t) for v, t in zip(f_logits, fake_y)) / 8)
    assert got == pytest.approx(expected, rel=1e-5)


def test_discriminator_shape_and_optimizer():
    algo, _ = _setup(urm_discriminator_hidden_layers=3, urm_discriminator_optimizer="sgd")
    widths = [m.out_features for m in algo.discriminator if isinstance(m, torch.nn.Linear)]
    assert widths == [100, 100, 100, 100, 1]
    assert isinstance(algo.discriminator_opt, torch.optim.SGD) and algo.discriminator_opt.defaults["momentum"] == 0.9


def test_draws_equal_domainbeds():
    fixed = {"urm": "adversarial", "urm_discriminator_optimizer": "adam", "urm_discriminator_hidden_layers": 1}
    assert_draws("urm", "RotatedMNIST", 0, 0, {**fixed, "urm_adv_lambda": 0.1, "urm_discriminator_label_smoothing": 0,
                                                "urm_generator_output": "tanh", "urm_discriminator_lr": 0.001})
    assert_draws("urm", "RotatedMNIST", 1, 0, {**fixed, "urm_adv_lambda": 0.15952849736568256,
                                                "urm_discriminator_label_smoothing": 0.0, "urm_generator_output": "relu",
                                                "urm_discriminator_lr": 0.00023824488158279828, "batch_size": 372})
    assert_draws("urm", "PACS", 0, 0, {"urm_discriminator_lr": 5e-05})
    assert_draws("urm", "PACS", 2, 1, {**fixed, "urm_adv_lambda": 0.18882776484168126, "urm_generator_output": "relu",
                                       "urm_discriminator_lr": 8.41350109423609e-06, "batch_size": 18})
