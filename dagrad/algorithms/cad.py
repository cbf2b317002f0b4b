"""CAD (Ruan et al. 2022, "Optimal Representations for Covariate Shift") as DomainBed runs it: one
forward pass over all environments, cross-entropy plus `lmbda` times a contrastive domain bottleneck on the
features, one Adam over featurizer, classifier (and projection head, when `is_project`).

The bottleneck follows supervised contrastive learning: logits z_i.z_j / temperature (self-pairs zeroed),
each row shifted by its detached maximum. Unconditional (CAD, minimises I(D;Z)): over rows that have
another example of their label, log p(j|i) = logit_ij - logsumexp_{j != i} logit_ij, and the row's loss
is -(t / 0.07) logsumexp over other-domain j of log p(j|i) (`is_flipped`), or +(t / 0.07) logsumexp over
same-domain j. Conditional (CondCAD, minimises I(D;Z|Y), see condcad.py): the same with p(j|i) normalised
over same-label j and the sums over same-label other-domain (flipped) or same-label same-domain examples,
over rows that have such a j. The loss is the mean of the finite row losses (0 when none is finite).

DomainBed's projection head (`is_project`) names an undefined width and fails; dagrad's maps the feature
width to itself, ReLU, then to 128, and DomainBed's defaults and search keep it off.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.registry import Option

BASE_TEMPERATURE = 0.07

CAD_HPARAMS = {
    "lmbda": Option(1e-1, float, "weight of the domain bottleneck", low=0.0,
                    search=lambda r: float(r.choice([1e-4, 1e-3, 1e-2, 1e-1, 1, 1e1, 1e2]))),
    "temperature": Option(0.1, float, "contrastive temperature", low=0.0, low_open=True,
                          search=lambda r: float(r.choice([0.05, 0.1]))),
    "is_normalized": Option(False, bool, "L2-normalise the features inside the bottleneck", search=lambda r: False),
    "is_project": Option(False, bool, "pass the features through a projection head first", search=lambda r: False),
    "is_flipped": Option(True, bool, "maximise log p of other-domain pairs (instead of minimising same-domain)",
                         search=lambda r: True),
}


def finite_mean(x: Tensor) -> Tensor:
    """Mean of the finite entries of a vector; 0 when none is finite."""
    finite = torch.isfinite(x)
    count = finite.float().sum()
    if count == 0:
        return x.new_zeros(())
    return torch.where(finite, x, x.new_zeros(())).sum() / count


def bottleneck_loss(z: Tensor, y: Tensor, domains: Tensor, temperature: float, conditional: bool,
                    flipped: bool, normalized: bool = False) -> Tensor:
    """The contrastive domain bottleneck of features `z` (n, d) with labels `y` and domain indices (module
    docstring)."""
    n = len(z)
    same_y = y.view(-1, 1) == y.view(1, -1)
    same_d = domains.view(-1, 1) == domains.view(1, -1)
    others = ~torch.eye(n, dtype=torch.bool, device=z.device)
    same_y = same_y & others
    if normalized:
        z = F.normalize(z, dim=1)
    logits = (z @ z.T) / temperature * others.float()
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    scale = temperature / BASE_TEMPERATURE
    if not conditional:
        log_prob = logits - torch.logsumexp(logits + others.float().log(), dim=1, keepdim=True)
        valid = same_y.float().sum(1) > 0
        log_prob, pick = log_prob[valid], same_d[valid]
        if flipped:
            rows = -scale * torch.logsumexp(log_prob + (~pick).float().log(), dim=1)
        else:
            rows = scale * torch.logsumexp(log_prob + pick.float().log(), dim=1)
    else:
        pick = same_y & (~same_d) if flipped else same_y & same_d
        valid = pick.float().sum(1) > 0
        logits, same_y, pick = logits[valid], same_y[valid].float(), pick[valid].float()
        log_prob_y = logits - torch.logsumexp(logits + same_y.log(), dim=1, keepdim=True)
        rows = scale * torch.logsumexp(log_prob_y + pick.log(), dim=1)
        rows = -rows if flipped else rows
    return finite_mean(rows)


@register("cad", hparams=CAD_HPARAMS, description="Contrastive adversarial domain bottleneck, min I(D;Z) (CAD)")
class CAD(FeaturizerClassifier):
    conditional = False

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        if self.hparams["is_project"]:
            width = featurizer.n_outputs
            self.project = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, 128))
            self.optimizer = torch.optim.Adam(
                [*self.network.parameters(), *self.project.parameters()],
                lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        domains = torch.cat([torch.full((len(xe),), i, dtype=torch.long, device=x.device)
                             for i, (xe, _) in enumerate(minibatches)])
        z = self.featurizer(x)
        zb = self.project(z) if self.hparams["is_project"] else z
        penalty = bottleneck_loss(zb, y, domains, self.hparams["temperature"], self.conditional,
                                  self.hparams["is_flipped"], self.hparams["is_normalized"])
        clf = F.cross_entropy(self.classifier(z), y)
        loss = clf + self.hparams["lmbda"] * penalty
        self.step(loss)
        return {"loss": loss.detach(), "nll": clf.detach(), "penalty": penalty.detach()}


__all__ = ["CAD", "CAD_HPARAMS", "bottleneck_loss", "finite_mean"]
