"""IB-IRM (Ahuja et al. 2021) as DomainBed runs it: IRM's loss (irm.py) plus IB-ERM's bottleneck penalty
(ib_erm.py), each with its own warm-up (IRM's weight 1 before, the bottleneck's 0 before); the Adam state
is cleared when the count reaches either warm-up's end."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.ib_erm import ib_hparams, ib_penalty
from dagrad.algorithms.irm import IRM_HPARAMS, irm_penalty
from dagrad.algorithms.registry import register


@register("ib_irm", hparams={**IRM_HPARAMS, **ib_hparams()},
          description="IRM with an information-bottleneck penalty on the features")
class IB_IRM(FeaturizerClassifier):  # noqa: N801 - DomainBed's name
    state_rules = {"update_count": COUNTER_RULE}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        h, done = self.hparams, self.updates_done
        irm_anneal, ib_anneal = int(h["irm_penalty_anneal_iters"]), int(h["ib_penalty_anneal_iters"])
        irm_weight = h["irm_lambda"] if done >= irm_anneal else 1.0
        ib_weight = h["ib_lambda"] if done >= ib_anneal else 0.0
        features = self.featurizer(torch.cat([x for x, _ in minibatches]))
        logits = self.classifier(features)
        nll, irm, ib, start = 0.0, 0.0, 0.0, 0
        for x, y in minibatches:
            end = start + len(x)
            nll = nll + F.cross_entropy(logits[start:end], y)
            irm = irm + irm_penalty(logits[start:end], y)
            ib = ib + ib_penalty(features[start:end])
            start = end
        n = len(minibatches)
        nll, irm, ib = nll / n, irm / n, ib / n
        loss = nll + irm_weight * irm + ib_weight * ib
        if done in (irm_anneal, ib_anneal):
            self.optimizer.state.clear()
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": nll.detach(), "irm_penalty": irm.detach(), "ib_penalty": ib.detach()}


__all__ = ["IB_IRM"]
