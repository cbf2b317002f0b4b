"""V-REx (Krueger et al. 2021) as DomainBed runs it: mean_e CE_e + weight * Var_e(CE_e), the population
variance of the per-environment risks; weight 1 until `vrex_penalty_anneal_iters` updates are done, then
`vrex_lambda`, with the Adam state cleared at the switch (as for IRM). One forward pass over all
environments."""

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


def risk_variance(losses: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, population variance) of a vector of per-environment risks."""
    mean = losses.mean()
    return mean, ((losses - mean) ** 2).mean()


VREX_HPARAMS = {
    "vrex_lambda": Option(1e1, float, "variance weight after the warm-up", low=0.0, search=log_uniform(-1, 5)),
    "vrex_penalty_anneal_iters": anneal_iters_option("updates with penalty weight 1 before vrex_lambda applies"),
}


@register("vrex", hparams=VREX_HPARAMS, description="Risk extrapolation: variance of per-environment risks (V-REx)")
class VREx(FeaturizerClassifier):
    state_rules = {"update_count": COUNTER_RULE}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        anneal = int(self.hparams["vrex_penalty_anneal_iters"])
        weight = self.hparams["vrex_lambda"] if self.updates_done >= anneal else 1.0
        logits = self.network(torch.cat([x for x, _ in minibatches]))
        losses, start = [], 0
        for x, y in minibatches:
            losses.append(F.cross_entropy(logits[start:start + len(x)], y))
            start += len(x)
        mean, penalty = risk_variance(torch.stack(losses))
        loss = mean + weight * penalty
        if self.updates_done == anneal:
            self.optimizer.state.clear()
        self.step(loss)
        count_update(self)
        # DomainBed reports the last environment's risk as 'nll'
        return {"loss": loss.detach(), "nll": losses[-1].detach(), "penalty": penalty.detach()}


__all__ = ["VREx", "risk_variance", "VREX_HPARAMS"]
