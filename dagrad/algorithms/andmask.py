"""AND-mask (Parascandolo et al. 2021) as DomainBed runs it.

Per parameter element, the environments' gradients (each environment's minibatch through the network on
its own) are averaged where the mean of their signs has magnitude >= tau and zeroed elsewhere; the result
is divided by the fraction of the tensor's elements kept (plus 1e-10), then Adam steps on it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.registry import Option


def and_mask(grads: list[Tensor], tau: float) -> Tensor:
    """The masked, rescaled mean of one parameter's per-environment gradients."""
    stacked = torch.stack(grads)
    mask = (torch.sign(stacked).mean(0).abs() >= tau).to(torch.float32)
    kept = mask.sum() / mask.numel()
    return mask * stacked.mean(0) * (1.0 / (1e-10 + kept))


ANDMASK_HPARAMS = {"tau": Option(1.0, float, "sign agreement needed to keep a gradient element", low=0.0, high=1.0,
                                 search=lambda r: float(r.uniform(0.5, 1.0)))}


@register("andmask", hparams=ANDMASK_HPARAMS,
          description="AND-mask: keep gradient elements whose sign all environments agree on")
class ANDMask(FeaturizerClassifier):
    def mask(self, grads: list[Tensor]) -> Tensor:
        """The gradient Adam steps on, from one parameter's per-environment gradients."""
        return and_mask(grads, self.hparams["tau"])

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        params = list(self.network.parameters())
        per_param: list[list[Tensor]] = [[] for _ in params]
        mean_loss = params[0].new_zeros(())
        for x, y in minibatches:
            loss = F.cross_entropy(self.network(x), y)
            mean_loss = mean_loss + loss.detach() / len(minibatches)
            for store, grad in zip(per_param, torch.autograd.grad(loss, params)):
                store.append(grad)
        self.optimizer.zero_grad()
        for p, grads in zip(params, per_param):
            p.grad = self.mask(grads)
        self.optimizer.step()
        return {"loss": mean_loss}


__all__ = ["ANDMask", "and_mask", "ANDMASK_HPARAMS"]
