"""IB-ERM (Ahuja et al. 2021) as DomainBed runs it: mean_e CE_e + weight * mean_e (mean over features of
the per-feature variance within e's minibatch); weight 0 until `ib_penalty_anneal_iters` updates are
done, then `ib_lambda`, with the Adam state cleared at the switch. One forward pass over all environments."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.irm import anneal_iters_option
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def ib_penalty(features: Tensor) -> Tensor:
    """The information-bottleneck penalty of one environment: mean over features of their (unbiased) variance."""
    return features.var(dim=0).mean()


def ib_hparams() -> dict[str, Option]:
    return {
        "ib_lambda": Option(1e2, float, "bottleneck weight after its warm-up", low=0.0, search=log_uniform(-1, 5)),
        "ib_penalty_anneal_iters": anneal_iters_option("updates without the bottleneck penalty"),
    }


@register("ib_erm", hparams=ib_hparams(), description="ERM with an information-bottleneck penalty on the features")
class IB_ERM(FeaturizerClassifier):  # noqa: N801 - DomainBed's name
    state_rules = {"update_count": COUNTER_RULE}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        anneal = int(self.hparams["ib_penalty_anneal_iters"])
        weight = self.hparams["ib_lambda"] if self.updates_done >= anneal else 0.0
        features = self.featurizer(torch.cat([x for x, _ in minibatches]))
        logits = self.classifier(features)
        nll, penalty, start = 0.0, 0.0, 0
        for x, y in minibatches:
            end = start + len(x)
            nll = nll + F.cross_entropy(logits[start:end], y)
            penalty = penalty + ib_penalty(features[start:end])
            start = end
        nll, penalty = nll / len(minibatches), penalty / len(minibatches)
        loss = nll + weight * penalty
        if self.updates_done == anneal:
            self.optimizer.state.clear()
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": nll.detach(), "ib_penalty": penalty.detach()}


__all__ = ["IB_ERM", "ib_penalty", "ib_hparams"]
