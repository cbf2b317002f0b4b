"""ERM as DomainBed runs it: the training environments' minibatches concatenated, one cross-entropy,
one Adam step over featurizer and linear classifier."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register


@register("erm", description="Empirical risk minimisation over the pooled training environments (DomainBed)")
class ERM(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.predict(x), y)
        self.step(loss)
        return {"loss": loss.detach()}
