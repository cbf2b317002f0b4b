"""IRM: the penalty from its definition, the annealing step with its Adam reset, DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.irm import irm_penalty


def test_penalty_is_the_product_of_the_half_batch_scale_gradients():
    # d/dw CE(w z, y) at w = 1 is sum_i (softmax(z_i) . z_i - z_{i,y_i}) / n
    logits = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.1, -1.0], [2.0, 0.0, 1.0], [-0.2, 0.4, 0.9]], dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 1])

    def grad(z, t):
        return ((F.softmax(z, 1) * z).sum(1) - z[torch.arange(len(t)), t]).mean()

    expected = grad(logits[::2], y[::2]) * grad(logits[1::2], y[1::2])
    assert irm_penalty(logits, y).item() == pytest.approx(expected.item(), rel=1e-12)


def test_penalty_weight_switches_at_the_anneal_step_and_adam_restarts_there():
    hp = resolve_hparams("irm", {"irm_penalty_anneal_iters": 2, "irm_lambda": 1e3}, 0, small_images=True)
    algo = build("irm", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(6, 6, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(2)]
    seen = []
    for _ in range(4):
        before = {id(p): s["step"].item() for p, s in algo.optimizer.state.items()}
        stats = algo.update(batches)
        seen.append((stats["loss"] - stats["nll"]) / stats["penalty"])
        seen_steps = [s["step"].item() for s in algo.optimizer.state.values()]
        assert len(set(seen_steps)) == 1
        if algo.updates_done == 3:  # the update counted 2 cleared Adam before stepping
            assert seen_steps[0] == 1 and set(before.values()) == {2}
    assert [float(w) for w in seen] == pytest.approx([1.0, 1.0, 1000.0, 1000.0], rel=1e-3)
    assert int(algo.update_count) == 4
    fresh = build("irm", hp, featurizer(), 3, 2)
    fresh.load_state_dict(algo.state_dict())
    assert fresh.updates_done == 4  # the counter comes back from a checkpoint


def test_draws_equal_domainbeds():
    assert_draws("irm", "RotatedMNIST", 0, 0, {"irm_lambda": 100.0, "irm_penalty_anneal_iters": 500})
    assert_draws("irm", "RotatedMNIST", 1, 0, {"irm_lambda": 65030.52212762795, "irm_penalty_anneal_iters": 2,
                                               "lr": 0.00011906162909279594, "weight_decay": 0.0})
    assert_draws("irm", "PACS", 2, 1, {"irm_lambda": 0.5404833338507985, "irm_penalty_anneal_iters": 1,
                                       "lr": 0.0002692684204277505, "weight_decay": 3.539788355410888e-06})
