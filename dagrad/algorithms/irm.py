"""IRM (Arjovsky et al. 2019, IRMv1) as DomainBed runs it.

Per environment e, the penalty is the product of the gradients of the cross-entropy with respect to a
dummy scale w = 1 on the even-indexed and on the odd-indexed examples of e's minibatch (an unbiased
estimate of ||grad_w R_e||^2). The loss is mean_e CE_e + weight * mean_e penalty_e, with weight 1 until
`irm_penalty_anneal_iters` updates are done and `irm_lambda` from then on. At the update whose count
equals the anneal step the Adam state is cleared (DomainBed builds a new Adam, which is the same thing).
The logits of all environments come from one forward pass over their concatenation.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """grad_w CE(w * logits[even], y[even]) * grad_w CE(w * logits[odd], y[odd]) at w = 1 (differentiable)."""
    scale = torch.ones((), device=logits.device, dtype=logits.dtype, requires_grad=True)
    loss_1 = F.cross_entropy(logits[::2] * scale, y[::2])
    loss_2 = F.cross_entropy(logits[1::2] * scale, y[1::2])
    grad_1 = torch.autograd.grad(loss_1, [scale], create_graph=True)[0]
    grad_2 = torch.autograd.grad(loss_2, [scale], create_graph=True)[0]
    return (grad_1 * grad_2).sum()


def anneal_iters_option(doc: str) -> Option:
    """DomainBed's penalty warm-up length: 500 updates, int(10^U(0, 4)) in random search."""
    return Option(500, int, doc, low=0, search=lambda r: int(10 ** r.uniform(0, 4)))


IRM_HPARAMS = {
    "irm_lambda": Option(1e2, float, "penalty weight after the warm-up", low=0.0, search=log_uniform(-1, 5)),
    "irm_penalty_anneal_iters": anneal_iters_option("updates with penalty weight 1 before irm_lambda applies"),
}


@register("irm", hparams=IRM_HPARAMS, description="Invariant Risk Minimization (IRMv1 penalty, DomainBed)")
class IRM(FeaturizerClassifier):
    state_rules = {"update_count": COUNTER_RULE}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        anneal = int(self.hparams["irm_penalty_anneal_iters"])
        weight = self.hparams["irm_lambda"] if self.updates_done >= anneal else 1.0
        logits = self.network(torch.cat([x for x, _ in minibatches]))
        nll, penalty, start = 0.0, 0.0, 0
        for x, y in minibatches:
            part = logits[start:start + len(x)]
            start += len(x)
            nll = nll + F.cross_entropy(part, y)
            penalty = penalty + irm_penalty(part, y)
        nll, penalty = nll / len(minibatches), penalty / len(minibatches)
        loss = nll + weight * penalty
        if self.updates_done == anneal:
            self.optimizer.state.clear()  # Adam restarts at the jump in the penalty's weight
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


__all__ = ["IRM", "irm_penalty", "IRM_HPARAMS", "anneal_iters_option"]
