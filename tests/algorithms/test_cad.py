"""CAD and CondCAD: the contrastive domain bottleneck from its definition on fixed features, the
finite mean, and DomainBed's draws."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.cad import bottleneck_loss, finite_mean

Z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6], [0.3, -0.4]], dtype=torch.float64)
Y = torch.tensor([0, 0, 1, 1, 0])
D = torch.tensor([0, 1, 0, 1, 1])


def _by_loops(conditional: bool, flipped: bool, t: float) -> float:
    """Each row's loss written out from the SupCon-style definition with plain floats."""
    n = len(Z)
    dot = [[float(Z[i] @ Z[j]) / t if i != j else 0.0 for j in range(n)] for i in range(n)]
    rows = []
    for i in range(n):
        shift = max(dot[i])
        logit = [v - shift for v in dot[i]]
        others = [j for j in range(n) if j != i]
        same_y = [j for j in others if Y[j] == Y[i]]
        if conditional:
            pick = [j for j in same_y if (D[j] != D[i]) == flipped]
            if not pick:
                continue
            norm = math.log(sum(math.exp(logit[j]) for j in same_y))
        else:
            if not same_y:
                continue
            pick = [j for j in range(n) if (D[j] != D[i]) == flipped]
            norm = math.log(sum(math.exp(logit[j]) for j in others))
        value = (t / 0.07) * math.log(sum(math.exp(logit[j] - norm) for j in pick))
        rows.append(-value if flipped else value)
    return sum(rows) / len(rows)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("flipped", [True, False])
def test_bottleneck_equals_its_definition(conditional, flipped):
    got = bottleneck_loss(Z, Y, D, 0.1, conditional, flipped).item()
    assert got == pytest.approx(_by_loops(conditional, flipped, 0.1), rel=1e-12)


def test_normalisation_and_the_finite_mean():
    assert bottleneck_loss(3 * Z, Y, D, 0.05, False, True, normalized=True).item() == pytest.approx(
        bottleneck_loss(Z / Z.norm(dim=1, keepdim=True), Y, D, 0.05, False, True).item(), rel=1e-12)
    assert finite_mean(torch.tensor([1.0, float("inf"), 3.0, float("nan")])).item() == 2.0
    assert finite_mean(torch.tensor([float("-inf")])).item() == 0.0
    # no example shares a label with another one: no valid row, the bottleneck is 0
    assert bottleneck_loss(Z[:2], torch.tensor([0, 1]), D[:2], 0.1, True, True).item() == 0.0


@pytest.mark.parametrize("name", ["cad", "condcad"])
def test_update_minimises_cross_entropy_plus_lmbda_times_the_bottleneck(name):
    hp = resolve_hparams(name, {"lmbda": 10.0, "is_project": True}, 0, small_images=True)
    algo = build(name, hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(5, 6, generator=g), torch.randint(0, 2, (5,), generator=g)) for _ in range(2)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        z = algo.featurizer(x)
        nll = torch.nn.functional.cross_entropy(algo.classifier(z), y)
        pen = bottleneck_loss(algo.project(z), y, torch.tensor([0] * 5 + [1] * 5), 0.1, name == "condcad", True)
    before = algo.project[0].weight.detach().clone()
    stats = algo.update(batches)
    assert stats["loss"].item() == pytest.approx((nll + 10.0 * pen).item(), rel=1e-6)
    assert stats["penalty"].item() == pytest.approx(pen.item(), rel=1e-6)
    assert not torch.equal(before, algo.project[0].weight)  # the projection head is trained


@pytest.mark.parametrize("name", ["cad", "condcad"])
def test_draws_equal_domainbeds(name):
    flags = {"is_normalized": False, "is_project": False, "is_flipped": True}
    assert_draws(name, "RotatedMNIST", 0, 0, {"lmbda": 0.1, "temperature": 0.1, **flags, "batch_size": 64})
    assert_draws(name, "RotatedMNIST", 1, 0, {"lmbda": 0.1, "temperature": 0.05, **flags,
                                               "lr": 0.00011906162909279594, "batch_size": 372})
    assert_draws(name, "PACS", 2, 1, {"lmbda": 0.1, "temperature": 0.1, "lr": 0.0002692684204277505,
                                      "weight_decay": 3.539788355410888e-06, "batch_size": 18})
