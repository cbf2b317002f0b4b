"""SelfReg: class runs and same-class partners, the regularised loss from its definition (with DomainBed's
quirks), DomainBed's (lr, weight decay only) draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.selfreg import class_run_ends, same_class_partners


def test_runs_end_where_the_label_changes_counting_from_label_zero():
    assert class_run_ends(torch.tensor([0, 0, 1, 2, 2])) == [2, 3, 5]
    assert class_run_ends(torch.tensor([1, 1, 2])) == [0, 2, 3]  # no label 0: an empty first run


def test_partners_stay_inside_their_class_run():
    ends = [0, 3, 4, 8]
    first, second = same_class_partners(ends)
    runs = [range(0, 3), range(3, 4), range(4, 8)]
    for index in range(8):
        run = next(r for r in runs if index in r)
        assert int(first[index]) in run and int(second[index]) in run
    assert sorted(first.tolist()) == list(range(8))


def test_loss_follows_the_definition():
    algo = build("selfreg", resolve_hparams("selfreg", {}, 0, small_images=True), featurizer(6, 4), 3, 2)
    batches = [(torch.randn(5, 6), torch.tensor([2, 0, 1, 0, 2])), (torch.randn(5, 6), torch.tensor([1, 1, 0, 2, 0]))]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    y_sorted, order = torch.sort(y)
    x = x[order]
    np.random.seed(4)
    torch.manual_seed(4)
    lam = np.random.beta(0.5, 0.5)
    with torch.no_grad():
        f = algo.featurizer(x)
        p = algo.cdpl(f)
        o = algo.classifier(f)
        a, b = same_class_partners(class_run_ends(y_sorted))
        ce = F.cross_entropy(o, y_sorted)
        ind = F.mse_loss(o, o[a]) + 0.3 * F.mse_loss(f, p[a])
        hdl = (F.mse_loss(o, lam * o[a] + (1 - lam) * o[b])
               + 0.3 * F.mse_loss(f, lam * p[a] + (1 - lam) * p[b]))
        expected = ce + min(ce.item(), 1.0) * (lam * ind + (1 - lam) * hdl)
    np.random.seed(4)
    torch.manual_seed(4)
    before = [q.clone() for q in algo.cdpl.parameters()]
    assert algo.update(batches)["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert all(torch.equal(q0, q) for q0, q in zip(before, algo.cdpl.parameters()))  # never stepped


def test_draws_equal_domainbeds():
    assert_draws("selfreg", "RotatedMNIST", 1, 0, {"lr": 0.00011906162909279594, "weight_decay": 0.0})
    assert_draws("selfreg", "PACS", 2, 1, {"lr": 0.0002692684204277505, "weight_decay": 3.539788355410888e-06})
