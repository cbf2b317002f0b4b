"""SAND-mask (Shahtalebi et al. 2021) as DomainBed runs it: AND-mask (andmask.py) with a smooth mask.

Per parameter element, with g_e the environments' gradients (each environment's minibatch through the
network on its own): mask = max(0, tanh(k * (abs(mean_e sign(g_e)) - tau) / Var_e(g_e))), the variance
unbiased (a NaN variance, as for one environment, counts as 1e-17; a NaN mask as 1e-17). Adam steps on
mask * mean_e(g_e) / (mean(mask) + 1e-10).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from dagrad.algorithms.andmask import ANDMask
from dagrad.algorithms.base import Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def sand_mask(grads: list[Tensor], tau: float, k: float) -> Tensor:
    """The smoothly masked, rescaled mean of one parameter's per-environment gradients."""
    stacked = torch.stack(grads)
    mean = stacked.mean(0)
    variance = stacked.var(dim=0)
    variance = torch.where(torch.isnan(variance), torch.full_like(variance, 1e-17), variance)
    mask = torch.tanh(k * variance.pow(-1) * (torch.sign(stacked).mean(0).abs() - tau))
    mask = torch.max(mask, torch.zeros_like(mask))
    mask = torch.where(torch.isnan(mask), torch.full_like(mask, 1e-17), mask)
    return mask * mean * (1.0 / (1e-10 + mask.sum() / mask.numel()))


SANDMASK_HPARAMS = {
    "tau": Option(1.0, float, "sign agreement where the mask starts to open", low=0.0, high=1.0,
                  search=lambda r: float(r.uniform(0.0, 1.0))),
    "k": Option(1e1, float, "steepness of the mask", low=0.0, search=log_uniform(-3, 5)),
}


@register("sandmask", hparams=SANDMASK_HPARAMS,
          description="SAND-mask: a smooth mask of gradient elements by sign agreement and variance")
class SANDMask(ANDMask):
    state_rules = {"update_count": COUNTER_RULE + " (counted, as in DomainBed, but not read)"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def mask(self, grads: list[Tensor]) -> Tensor:
        return sand_mask(grads, self.hparams["tau"], self.hparams["k"])

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        stats = super().update(minibatches, unlabeled)
        count_update(self)
        return stats


__all__ = ["SANDMask", "sand_mask", "SANDMASK_HPARAMS"]
