"""Inter-domain Mixup (Xu et al. 2020; Yan et al. 2020) as DomainBed runs it.

The environments are put in a random order (torch.randperm) and each is paired with the next one,
cyclically; both minibatches are cut to the shorter one's length. For each pair a lambda ~ Beta(alpha,
alpha) is drawn (numpy's global generator, which checkpoints carry), the inputs are mixed
lambda * x_i + (1 - lambda) * x_j, and the loss adds lambda * CE(., y_i) + (1 - lambda) * CE(., y_j).
The sum over pairs is divided by the number of environments.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def random_pairs(minibatches: list[Minibatch]) -> list[tuple[Minibatch, Minibatch]]:
    """Each environment of a random order with the next (the last with the first), cut to equal length."""
    order = torch.randperm(len(minibatches)).tolist()
    pairs = []
    for k, i in enumerate(order):
        j = order[(k + 1) % len(order)]
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs


MIXUP_HPARAMS = {"mixup_alpha": Option(0.2, float, "Beta(alpha, alpha) of the mixing weight", low=0.0,
                                       low_open=True, search=log_uniform(-1, 1))}


@register("mixup", hparams=MIXUP_HPARAMS, description="Inter-domain Mixup of inputs and labels (DomainBed)")
class Mixup(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        alpha = self.hparams["mixup_alpha"]
        objective = 0.0
        for (xi, yi), (xj, yj) in random_pairs(minibatches):
            lam = float(np.random.beta(alpha, alpha))
            out = self.predict(lam * xi + (1 - lam) * xj)
            objective = objective + lam * F.cross_entropy(out, yi)
            objective = objective + (1 - lam) * F.cross_entropy(out, yj)
        objective = objective / len(minibatches)
        self.step(objective)
        return {"loss": objective.detach()}


__all__ = ["Mixup", "random_pairs", "MIXUP_HPARAMS"]
