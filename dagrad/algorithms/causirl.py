"""The shared step of CausIRL-CORAL and CausIRL-MMD (Chevalley et al. 2022) as DomainBed runs them.

Each environment's minibatch goes through the featurizer on its own and is cut at a random point
(numpy's global generator: randint(0, batch)); the heads of all environments form one set, the tails
another, and the penalty is the distance between the two sets' features (CORAL's or MMD's), NaNs set
to 0 and the penalty 0 when either set has fewer than two rows. The loss is mean_e CE(logits_e + 1e-16)
+ mmd_gamma * penalty.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats


def split_heads_and_tails(features: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Every environment's features cut at randint(0, len); heads concatenated, tails concatenated."""
    cuts = [np.random.randint(0, len(f)) for f in features]
    return (torch.cat([f[:c] for f, c in zip(features, cuts)]), torch.cat([f[c:] for f, c in zip(features, cuts)]))


class CausIRL(FeaturizerClassifier):
    """Subclasses set `distance` (features, features) -> scalar."""

    distance: Callable[[Tensor, Tensor], Tensor]

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        features = [self.featurizer(x) for x, _ in minibatches]
        objective = 0.0
        for f, (_, y) in zip(features, minibatches):
            objective = objective + F.cross_entropy(self.classifier(f) + 1e-16, y)
        first, second = split_heads_and_tails(features)
        if len(first) > 1 and len(second) > 1:
            penalty = torch.nan_to_num(type(self).distance(first, second))
        else:
            penalty = features[0].new_zeros(())
        objective = objective / len(minibatches)
        self.step(objective + self.hparams["mmd_gamma"] * penalty)
        return {"loss": objective.detach(), "penalty": penalty.detach()}


__all__ = ["CausIRL", "split_heads_and_tails"]
