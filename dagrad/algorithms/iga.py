"""Inter-environmental Gradient Alignment (Koyama & Yamaguchi 2020) as DomainBed runs it: the mean of the
per-environment risks plus `penalty` times sum_e ||grad R_e - grad mean_e R_e||^2 over all network
parameters (each environment's minibatch through the network on its own; second-order gradients)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

IGA_HPARAMS = {"penalty": Option(1000.0, float, "weight of the gradient-variance penalty", low=0.0,
                                 search=log_uniform(1, 5))}


@register("iga", hparams=IGA_HPARAMS, description="Inter-environment gradient alignment (gradient variance penalty)")
class IGA(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        params = list(self.network.parameters())
        total, grads = 0.0, []
        for x, y in minibatches:
            loss = F.cross_entropy(self.network(x), y)
            total = total + loss
            grads.append(torch.autograd.grad(loss, params, create_graph=True))
        mean_loss = total / len(minibatches)
        mean_grad = torch.autograd.grad(mean_loss, params, retain_graph=True)
        penalty = 0.0
        for grad in grads:
            for g, m in zip(grad, mean_grad):
                penalty = penalty + (g - m).pow(2).sum()
        self.step(mean_loss + self.hparams["penalty"] * penalty)
        return {"loss": mean_loss.detach(), "penalty": penalty.detach()}


__all__ = ["IGA", "IGA_HPARAMS"]
