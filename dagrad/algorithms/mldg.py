"""MLDG (Li et al. 2018, Algorithm 1 / Eq. 3) in DomainBed's first-order form.

The environments are put in a random order (torch.randperm); the last `n_meta_test` are meta-test, the
others meta-train, each meta-train environment i paired cyclically with a meta-test j (both cut to the
shorter length). For each pair a copy of the network takes one Adam step (a fresh Adam, lr and
weight_decay) on CE_i; the network's gradient collects (G_i + mldg_beta * G_j) / n_envs, where G_i is
the copy's gradient of CE_i before its step and G_j the copy's gradient of CE_j after it (no second
derivatives). Then the network's Adam takes one step. The copies are transient: nothing of them is kept,
and (as in DomainBed) BatchNorm statistics move only in the copies.
"""

from __future__ import annotations

import copy
from itertools import cycle
from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def meta_splits(minibatches: list[Minibatch], n_meta_test: int) -> list[tuple[Minibatch, Minibatch]]:
    """(meta-train, meta-test) pairs of a random order of environments, cut to equal length."""
    order = torch.randperm(len(minibatches)).tolist()
    train, test = order[:len(order) - n_meta_test], order[-n_meta_test:]
    pairs = []
    for i, j in zip(train, cycle(test)):
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs


MLDG_HPARAMS = {
    "mldg_beta": Option(1.0, float, "weight of the meta-test loss", low=0.0, search=log_uniform(-1, 1)),
    "n_meta_test": Option(2, int, "meta-test environments per update", low=1, search=lambda r: int(r.choice([1, 2]))),
}


@register("mldg", hparams=MLDG_HPARAMS, description="Meta-learning domain generalization (first-order MLDG)")
class MLDG(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        n, beta = len(minibatches), self.hparams["mldg_beta"]
        params = list(self.network.parameters())
        self.optimizer.zero_grad()
        for p in params:
            p.grad = torch.zeros_like(p)
        objective = params[0].new_zeros(())
        for (xi, yi), (xj, yj) in meta_splits(minibatches, int(self.hparams["n_meta_test"])):
            inner = copy.deepcopy(self.network)
            inner_opt = torch.optim.Adam(inner.parameters(), lr=self.hparams["lr"],
                                         weight_decay=self.hparams["weight_decay"])
            inner_loss = F.cross_entropy(inner(xi), yi)
            inner_opt.zero_grad()
            inner_loss.backward()
            inner_opt.step()
            for p, q in zip(params, inner.parameters()):
                if q.grad is not None:
                    p.grad.add_(q.grad / n)
            test_loss = F.cross_entropy(inner(xj), yj)
            grads = torch.autograd.grad(test_loss, list(inner.parameters()), allow_unused=True)
            for p, g in zip(params, grads):
                if g is not None:
                    p.grad.add_(beta * g / n)
            objective = objective + inner_loss.detach() + beta * test_loss.detach()
        self.optimizer.step()
        return {"loss": objective / n}


__all__ = ["MLDG", "meta_splits", "MLDG_HPARAMS"]
