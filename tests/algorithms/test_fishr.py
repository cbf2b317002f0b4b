"""Fishr: per-example gradients against their closed form, the variance penalty and its moving average from
their definitions, the warm-up switch, DomainBed's draws, and the one-line message without BackPACK."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.fishr import MISSING, gradient_variances, variance_distance
from dagrad.utils.errors import ConfigError

needs_backpack = pytest.mark.skipif(
    importlib.util.find_spec("backpack") is None,
    reason="backpack-for-pytorch is not installed (pip install 'dagrad[fishr]')")


def _setup(**overrides):
    hp = resolve_hparams("fishr", overrides, 0, small_images=True)
    algo = build("fishr", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(11)
    return algo, [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]


def test_without_backpack_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "backpack", None)  # import backpack raises ImportError
    with pytest.raises(ConfigError) as err:
        _setup()
    assert str(err.value) == MISSING and "\n" not in MISSING and "dagrad[fishr]" in MISSING


def test_variances_and_distance_from_their_definitions():
    g = {"weight": torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.0, 1.0], [4.0, 5.0]]), "bias": torch.tensor([[1.0], [0.0], [2.0], [2.0]])}
    v = gradient_variances(g, [2, 2])
    assert v[0]["weight"].tolist() == [1.0, 0.0] and v[1]["weight"].tolist() == [4.0, 4.0]
    assert v[0]["bias"].tolist() == [0.25] and v[1]["bias"].tolist() == [0.0]
    # mean variances: bias 0.125, weight (2.5, 2); flattened bias first: e0 (0.25, 1, 0), e1 (0, 4, 4)
    d0 = ((0.25 - 0.125) ** 2 + (1 - 2.5) ** 2 + (0 - 2) ** 2) / 3
    d1 = ((0 - 0.125) ** 2 + (4 - 2.5) ** 2 + (4 - 2) ** 2) / 3
    assert variance_distance(v).item() == pytest.approx((d0 + d1) / 2)


@needs_backpack
def test_per_example_gradients_are_the_closed_form():
    algo, batches = _setup()
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    z = algo.featurizer(x)
    grads = algo._per_example_grads(z, algo.classifier(z), y)
    residual = (F.softmax(algo.classifier(z), 1) - F.one_hot(y, 3)).detach()
    assert torch.allclose(grads["bias"], residual, atol=1e-6)
    assert torch.allclose(grads["weight"], (residual[:, :, None] * z.detach()[:, None, :]).reshape(8, -1), atol=1e-6)


@needs_backpack
def test_moving_average_is_corrected_and_stored():
    algo, _ = _setup(ema=0.9)
    d1, d2 = {"weight": torch.full((12,), 2.0), "bias": torch.ones(3)}, {"weight": torch.full((12,), 4.0), "bias": torch.zeros(3)}
    first = algo._moving_averages([d1, d1])
    assert torch.allclose(first[0]["weight"], torch.full((1, 12), 2.0))
    second = algo._moving_averages([d2, d2])  # (0.9 * 0.1 * 2 + 0.1 * 4) / 0.1 = 0.9 * 2 + 4
    assert torch.allclose(second[1]["weight"], torch.full((1, 12), 5.8)) and torch.allclose(second[1]["bias"], torch.full((1, 3), 0.9))
    assert torch.allclose(algo.ema_1_weight, torch.full((1, 12), 0.58))


@needs_backpack
def test_penalty_switches_on_and_adam_restarts():
    algo, batches = _setup(penalty_anneal_iters=1, **{"lambda": 50.0})
    s0 = algo.update(batches)
    assert s0["loss"].item() == pytest.approx(s0["nll"].item())
    s1 = algo.update(batches)
    assert s1["loss"].item() == pytest.approx((s1["nll"] + 50.0 * s1["penalty"]).item(), rel=1e-6)
    assert int(algo.optimizer.state[algo.classifier.weight]["step"]) == 1 and int(algo.update_count) == 2


def test_draws_equal_domainbeds():
    assert_draws("fishr", "RotatedMNIST", 0, 0, {"lambda": 1000.0, "penalty_anneal_iters": 1500, "ema": 0.95})
    assert_draws("fishr", "RotatedMNIST", 1, 0, {"lambda": 809.251247284292, "penalty_anneal_iters": 4072,
                                                  "ema": 0.9129082782560279, "batch_size": 372})
    assert_draws("fishr", "PACS", 2, 1, {"lambda": 37.67409966983913, "penalty_anneal_iters": 3295,
                                         "ema": 0.9472104256413284, "weight_decay": 3.539788355410888e-06})
