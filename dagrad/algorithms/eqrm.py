"""EQRM (Eastwood et al. 2022, "Probable Domain Generalization via Quantile Risk Minimization") as
DomainBed runs it: each environment's risk from its own forward pass; while fewer than
`eqrm_burnin_iters` updates are done the loss is their mean (ERM); afterwards it is the
`eqrm_quantile`-quantile of a Gaussian kernel density fitted to the risks (bandwidth
1.06 * std * n^-1/5, the quantile found by 32 bisection steps between the quantiles of the kernels on the
smallest and largest risk, in float64), differentiable through the bisection. On the update where the
count equals `eqrm_burnin_iters` the Adam state is cleared and its learning rate becomes `eqrm_lr` (DomainBed
builds a new Adam). DomainBed draws `eqrm_burnin_iters` as a float, which no count equals: such a draw
switches the loss after the burn-in but never resets Adam; dagrad keeps that.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Normal

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.registry import register
from dagrad.registry import Option

EQRM_HPARAMS = {
    "eqrm_quantile": Option(0.75, float, "the risk quantile minimised after the burn-in", low=0.0, high=1.0,
                            low_open=True, high_open=True, search=lambda r: float(r.uniform(0.5, 0.99))),
    "eqrm_burnin_iters": Option(2500, float, "updates of ERM before the quantile loss", low=0.0,
                                search=lambda r: float(10 ** r.uniform(2.5, 3.5))),
    "eqrm_lr": Option(1e-6, float, "Adam learning rate after the burn-in", low=0.0, low_open=True,
                      search=lambda r: float(10 ** r.uniform(-7, -5))),
}


def kde_bandwidth(x: Tensor) -> Tensor:
    """The Gauss-optimal rule of thumb: 1.06 * sample std * n^-1/5."""
    return 1.06 * torch.std(x, unbiased=True) * (len(x) ** -0.2)


def kde_quantile(risks: Tensor, q: Tensor, steps: int = 32) -> Tensor:
    """The q-quantile of the Gaussian KDE of `risks`, by bisection on its CDF (stops early at a fixed point)."""
    data = torch.sort(risks)[0]
    bw = kde_bandwidth(data)
    sigmas = torch.ones(len(data), device=data.device) * bw

    def cdf(k: Tensor) -> Tensor:
        return torch.mean(Normal(data, sigmas).cdf(k.repeat(len(data), 1).T))

    bounds = [Normal(data[0], bw).icdf(q), Normal(data[-1], bw).icdf(q)]
    k = 0.5 * sum(bounds)
    for _ in range(steps):
        bounds[int(cdf(k) > q)] = k
        following = 0.5 * sum(bounds)
        if following == k:
            break
        k = following
    return k


@register("eqrm", hparams=EQRM_HPARAMS,
          description="Empirical quantile risk minimisation: a KDE quantile of the environment risks (EQRM)")
class EQRM(FeaturizerClassifier):
    state_rules = {"update_count": COUNTER_RULE}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        risks = torch.cat([F.cross_entropy(self.network(x), y).reshape(1) for x, y in minibatches])
        burnin = self.hparams["eqrm_burnin_iters"]
        if self.updates_done < burnin:
            loss = risks.mean()
        else:
            q = torch.tensor(self.hparams["eqrm_quantile"], dtype=torch.float64, device=risks.device)
            loss = kde_quantile(risks, q)
        if self.updates_done == burnin:
            self.optimizer.state.clear()
            for group in self.optimizer.param_groups:
                group["lr"] = self.hparams["eqrm_lr"]
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": risks.mean().detach()}


__all__ = ["EQRM", "EQRM_HPARAMS", "kde_bandwidth", "kde_quantile"]
