"""Fish: the inner loop's result (one Adam step per environment, then meta_lr of the way), its Adam state
carried across updates and checkpoints; DomainBed's draws."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.gradsamp.history import trainable


def test_update_moves_meta_lr_of_the_way_to_the_inner_loops_result():
    algo = build("fish", resolve_hparams("fish", {"meta_lr": 0.1}, 0, small_images=True), featurizer(), 3, 2)
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(3)]
    start = [p.detach().clone() for p in algo.network.parameters()]
    inner = copy.deepcopy(algo.network)
    opt = torch.optim.Adam(inner.parameters(), lr=1e-3)
    for x, y in batches:  # the definition: sequential steps, one per environment
        opt.zero_grad()
        F.cross_entropy(inner(x), y).backward()
        opt.step()
    algo.update(batches)
    for p, p0, pi in zip(algo.network.parameters(), start, inner.parameters()):
        assert torch.allclose(p, p0 + 0.1 * (pi - p0), atol=1e-7)
    assert all(len(s) == 0 for s in algo.optimizer.state.values()) and len(algo.optimizer_inner.state) > 0
    assert set(algo.optimizers()) == {"adam", "inner"}
    assert all(n.startswith(("featurizer.", "classifier.")) for n in trainable(algo))


def test_draws_equal_domainbeds():
    assert_draws("fish", "RotatedMNIST", 0, 0, {"meta_lr": 0.5})
    assert_draws("fish", "RotatedMNIST", 1, 0, {"meta_lr": 0.5, "lr": 0.00011906162909279594})
    assert_draws("fish", "PACS", 2, 1, {"meta_lr": 0.5, "weight_decay": 3.539788355410888e-06})
