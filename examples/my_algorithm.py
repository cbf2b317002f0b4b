"""Add your own algorithm: inter-domain Mixup (Yan et al. 2020, as DomainBed runs it) in one file.

Everything a new algorithm needs is here:
1. subclass `dagrad.algorithms.base.Algorithm` with the constructor
   `(featurizer, num_classes, num_domains, hparams)`; `featurizer.n_outputs` is the feature width.
   Here `FeaturizerClassifier` (an Algorithm with a linear head and one Adam) saves the set-up;
2. implement `update` (one optimisation step over one minibatch per training environment; return
   its statistics as detached 0-dim tensors, never `.item()`, which would wait for the GPU every
   step; the engine reads them when a record needs them), `predict` (logits) and `optimizers`
   (every optimizer, by name, so the engine can checkpoint it and GradSamp can reset it);
   FeaturizerClassifier provides the last two;
3. keep all state in parameters and buffers (integer buffers for counters), so checkpoints, GradSamp
   and SWAD see it without knowing your algorithm;
4. register it under a name with its hyperparameters: a default and a random-search distribution each
   (`lr` and `weight_decay` come from the registry's common table; add only your own).

Use it by importing this file before the configuration is validated, then name it:
`algorithm: {name: my_mixup, hparams: {mixup_alpha: 0.4}}` (see the README's "Add your own algorithm").
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.extend import FeaturizerClassifier, Minibatch, Option, Stats, log_uniform, register_algorithm

MIXUP_HPARAMS = {
    # DomainBed: mixup_alpha default 0.2, random-search 10^U(-1, 1); the range is checked for every value
    "mixup_alpha": Option(0.2, float, "Beta(alpha, alpha) of the mixing weight", low=0.0, low_open=True,
                          search=log_uniform(-1, 1)),
}


def random_pairs(minibatches: list[Minibatch]) -> list[tuple[Minibatch, Minibatch]]:
    """Pairs each environment's minibatch with the next one in a random order (the last with the first),
    both cut to the shorter length, as DomainBed's `random_pairs_of_minibatches` does."""
    order = torch.randperm(len(minibatches)).tolist()
    pairs = []
    for k, i in enumerate(order):
        j = order[(k + 1) % len(order)]
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs


@register_algorithm("my_mixup", hparams=MIXUP_HPARAMS, description="Inter-domain Mixup (DomainBed); the add-your-own example")
class Mixup(FeaturizerClassifier):
    """Mixes inputs of two training environments with lam ~ Beta(alpha, alpha) and the two labels' losses
    with the same weights; featurizer + linear classifier, one Adam."""

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        alpha = float(self.hparams["mixup_alpha"])
        beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
        objective = 0.0
        for (xi, yi), (xj, yj) in random_pairs(minibatches):
            lam = beta.sample().item()  # the global torch generator: seeded by the engine, deterministic
            logits = self.predict(lam * xi + (1 - lam) * xj)
            objective = objective + lam * F.cross_entropy(logits, yi) + (1 - lam) * F.cross_entropy(logits, yj)
        objective = objective / len(minibatches)
        self.step(objective)
        return {"loss": objective.detach()}
