"""RDM (Nguyen et al. 2024, "Domain Generalization via Risk Distribution Matching") as DomainBed runs it.

One forward pass over all environments; the per-example cross-entropies of each environment form its risk
distribution. The loss is mean_e CE_e + rdm_lambda * MMD^2(worst, all) + variance_weight * (Var(all) +
Var(worst)), where `worst` holds the per-example risks of the environment with the largest mean risk, `all`
every environment's (unbiased variances; the MMD is MMD's biased Gaussian-kernel estimate, with eight
bandwidths 1e-4 ... 1e3, on the risks as one-dimensional points). Both penalty weights are 0 until
`rdm_penalty_anneal_iters` updates are done; on the update where the count equals it the Adam state is
cleared and its learning rate becomes `rdm_lr` (DomainBed builds a new Adam).

Hyperparameters depend on the dataset as in DomainBed's registry (DomainNet; PACS and TerraIncognita;
TerraIncognita, OfficeHome and DomainNet without the variance term), and so does the batch size on
full-size images: 88 (random search int(U(70, 100))), 40 on DomainNet and TerraIncognita (int(U(30, 60))).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.mmd import gaussian_kernel
from dagrad.algorithms.registry import register
from dagrad.registry import Option

BANDWIDTHS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def domainbed_dataset(name: str) -> str:
    """DomainBed's name of a dagrad dataset, for the dataset-dependent entries ('' when none applies)."""
    for prefix, db in (("wilds_domain_net", "DomainNet"), ("domain_net", "DomainNet"), ("pacs", "PACS"),
                       ("terra_incognita", "TerraIncognita"), ("office_home", "OfficeHome")):
        if name.startswith(prefix):
            return db
    return ""


def rdm_hparams(small_images: bool, dataset: str) -> dict[str, Option]:
    db = domainbed_dataset(dataset)
    if db == "DomainNet":
        lam = Option(0.5, float, "weight of the risk-distribution MMD", low=0.0, search=lambda r: float(r.uniform(0.1, 1.0)))
    elif db in ("PACS", "TerraIncognita"):
        lam = Option(5.0, float, "weight of the risk-distribution MMD", low=0.0, search=lambda r: float(r.uniform(1.0, 10.0)))
    else:
        lam = Option(5.0, float, "weight of the risk-distribution MMD", low=0.0, search=lambda r: float(r.uniform(0.1, 10.0)))
    if db == "DomainNet":
        anneal = Option(2400, int, "updates without penalties (then Adam restarts with rdm_lr)", low=0,
                        search=lambda r: int(r.uniform(1500, 3000)))
    else:
        anneal = Option(1500, int, "updates without penalties (then Adam restarts with rdm_lr)", low=0,
                        search=lambda r: int(r.uniform(800, 2700)))
    if db in ("TerraIncognita", "OfficeHome", "DomainNet"):
        variance = Option(0.0, float, "weight of the risk variances", low=0.0, search=lambda r: 0.0)
    else:
        variance = Option(0.004, float, "weight of the risk variances", low=0.0,
                          search=lambda r: float(r.uniform(0.001, 0.007)))
    return {"rdm_lambda": lam, "rdm_penalty_anneal_iters": anneal, "variance_weight": variance,
            "rdm_lr": Option(1.5e-5, float, "Adam learning rate once the penalties apply", low=0.0, low_open=True,
                             search=lambda r: float(r.uniform(8e-6, 2e-5)))}


def rdm_batch_size(dataset: str) -> Option:
    """DomainBed's RDM batch size on full-size images (per training environment)."""
    if domainbed_dataset(dataset) in ("DomainNet", "TerraIncognita"):
        return Option(40, int, "examples per training environment per step", low=1,
                      search=lambda r: int(r.uniform(30, 60)))
    return Option(88, int, "examples per training environment per step", low=1, search=lambda r: int(r.uniform(70, 100)))


def risk_mmd(worst: Tensor, every: Tensor) -> Tensor:
    """Biased Gaussian-kernel MMD^2 between two sets of scalar risks (eight bandwidths)."""
    x, y = worst.unsqueeze(1), every.unsqueeze(1)
    return (gaussian_kernel(x, x, BANDWIDTHS).mean() + gaussian_kernel(y, y, BANDWIDTHS).mean()
            - 2 * gaussian_kernel(x, y, BANDWIDTHS).mean())


def rdm_penalties(env_risks: Tensor, per_example: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """(mean of the environments' risks, MMD^2(worst, all), Var(all) + Var(worst)) from each environment's
    risk and per-example risks."""
    worst = per_example[int(torch.argmax(env_risks.detach()))].flatten()
    every = torch.cat(per_example).flatten()
    return env_risks.mean(), risk_mmd(worst, every), torch.var(every) + torch.var(worst)


@register("rdm", hparams=rdm_hparams,
          description="Risk distribution matching: MMD between the worst and all per-example risks (RDM)")
class RDM(FeaturizerClassifier):
    state_rules = {"update_count": COUNTER_RULE}
    full_size_batch_size_option = staticmethod(rdm_batch_size)

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        add_update_count(self)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        on = self.updates_done >= self.hparams["rdm_penalty_anneal_iters"]
        logits = self.predict(torch.cat([x for x, _ in minibatches]))
        risks, per_example, start = [], [], 0
        for x, y in minibatches:
            env_logits = logits[start:start + len(x)]
            risks.append(F.cross_entropy(env_logits, y))
            per_example.append(F.cross_entropy(env_logits, y, reduction="none"))
            start += len(x)
        erm, matching, variance = rdm_penalties(torch.stack(risks), per_example)
        loss = erm + (self.hparams["rdm_lambda"] if on else 0.0) * matching + \
            (self.hparams["variance_weight"] if on else 0.0) * variance
        if self.updates_done == self.hparams["rdm_penalty_anneal_iters"]:
            self.optimizer.state.clear()
            for group in self.optimizer.param_groups:
                group["lr"] = self.hparams["rdm_lr"]
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": erm.detach(), "matching_penalty": matching.detach(),
                "variance_penalty": variance.detach()}


__all__ = ["RDM", "rdm_hparams", "rdm_batch_size", "rdm_penalties", "risk_mmd", "domainbed_dataset"]
