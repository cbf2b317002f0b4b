"""TRM: DomainBed's Neumann estimate against an explicit Hessian, the ERM phase, the transfer weights'
update, DomainBed's draws."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.trm import neumann_inverse_hvp


def _hessian(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    def loss(w):
        return F.cross_entropy(x @ w.view_as(head.weight).T + head.bias, y)
    return torch.autograd.functional.hessian(loss, head.weight.detach().reshape(-1))


def test_neumann_estimate_is_twice_v1_plus_the_later_terms():
    torch.manual_seed(0)
    head = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    v0 = torch.randn(6, dtype=torch.float64)
    h = _hessian(head, x, y)
    terms, v = [], v0
    for _ in range(10):
        v = v - h @ v
        terms.append(v)
    expected = terms[0] + sum(terms)  # DomainBed's in-place first step counts v_1 twice and v_0 never
    assert torch.allclose(neumann_inverse_hvp(v0, head, x, y), expected, rtol=1e-10, atol=1e-12)


def test_neumann_estimate_stops_once_it_exceeds_ten():
    head = torch.nn.Linear(2, 2).double()
    x, y = torch.zeros(4, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1])  # zero features: H = 0
    v0 = torch.tensor([4.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    # v_k = v_0 for all k; h after step 1 = 8, after step 2 = 12 > 10: stop there
    assert neumann_inverse_hvp(v0, head, x, y).tolist() == [12.0, 0.0, 0.0, 0.0]


def _algo(iters: int, eta: float = 1e-2):
    hp = resolve_hparams("trm", {"iters": iters, "groupdro_eta": eta}, 0, small_images=True)
    return build("trm", hp, featurizer(), 3, 3)


def _batches():
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(3)]


def test_erm_phase_trains_only_featurizer_and_classifier():
    algo, batches = _algo(iters=2), _batches()
    heads = [p.detach().clone() for p in algo.heads.parameters()]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        nll = F.cross_entropy(algo.predict(x), y)
    stats = algo.update(batches)
    assert stats["loss"].item() == pytest.approx(nll.item(), rel=1e-6) and stats["trm_loss"].item() == 0.0
    assert all(torch.equal(a, b) for a, b in zip(heads, algo.heads.parameters()))
    assert torch.equal(algo.alpha, torch.ones(3, 3) - torch.eye(3))


def test_transfer_phase_trains_heads_and_updates_alpha_from_the_weighted_risks():
    algo, batches = _algo(iters=0, eta=0.5), _batches()
    ref = copy.deepcopy(algo)
    with torch.no_grad():  # one pass over all environments, as the update's
        feats = list(torch.split(ref.featurizer(torch.cat([x for x, _ in batches])), 5))
    ref._train_heads(feats, [y for _, y in batches])  # 30 SGD steps of each head on the detached features
    algo.update(batches)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(ref.heads.parameters(), algo.heads.parameters()))
    expected = torch.zeros(3, 3)
    with torch.no_grad():
        for q in range(3):
            for i in range(3):
                if i != q:  # alpha starts at 1/2 off the diagonal; the exponent uses the weighted risk
                    expected[q, i] = 0.5 * torch.exp(0.5 * 0.5 * F.cross_entropy(ref.heads[q](feats[i]), batches[i][1]))
    assert torch.allclose(algo.alpha, expected, rtol=1e-6, atol=0)
    assert int(algo.update_count) == 1


def test_draws_equal_domainbeds():
    assert_draws("trm", "RotatedMNIST", 0, 0, {"cos_lambda": 0.0001, "iters": 200, "groupdro_eta": 0.01})
    assert_draws("trm", "RotatedMNIST", 1, 0, {"cos_lambda": 2.2217779996347212e-05, "iters": 16,
                                                "groupdro_eta": 0.01297606872689568, "batch_size": 372})
    assert_draws("trm", "PACS", 2, 1, {"cos_lambda": 0.00042044902449910195, "iters": 1,
                                       "groupdro_eta": 0.005213293019059593, "batch_size": 18})
