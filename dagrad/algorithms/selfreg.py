"""SelfReg (Kim et al. 2021) as DomainBed runs it.

The pooled batch is sorted by label (torch.sort). Within each run of equal labels two random
permutations (torch.randperm) pick, for every example, two partners of its class. With lambda ~
Beta(0.5, 0.5) (numpy's global generator):
    loss = CE + c * (lambda * (MSE(o, o2) + 0.3 MSE(f, p2)) + (1 - lambda) * (MSE(o, o3) + 0.3 MSE(f, p3)))
where o are logits, f features, p = cdpl(f) the projection of an MLP with BatchNorm, o2/p2 the first
partners' logits/projections, o3/p3 lambda-mixes of both partners', and c = min(CE, 1) (a constant).

DomainBed's quirks, kept so the numbers compare:
- the feature terms compare the features with the partners' *projections*;
- the Adam optimizer is built (by ERM) before the projection MLP exists, so the MLP is never stepped:
  only its BatchNorm statistics move. A sampled epoch draws only featurizer + classifier;
- the run boundaries start at label 0, so a batch without label 0 begins with an empty run.
Finding the runs reads the sorted labels on the host: one device sync per update (DomainBed loops over
them too).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register


def projection_mlp(width: int) -> nn.Sequential:
    """DomainBed's `cdpl`: Linear-BN-ReLU, Linear-BN-ReLU, Linear-BN; hidden width 2x (or 2048 kept)."""
    hidden = width if width == 2048 else 2 * width
    return nn.Sequential(
        nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, width), nn.BatchNorm1d(width),
    )


def class_run_ends(sorted_y: Tensor) -> list[int]:
    """Where each run of equal labels ends in a sorted label vector, boundaries counted from label 0."""
    ends, current = [], 0
    for index, value in enumerate(sorted_y.tolist()):
        if value != current:
            ends.append(index)
            current = value
    return ends + [len(sorted_y)]


def same_class_partners(ends: list[int]) -> tuple[Tensor, Tensor]:
    """Two index vectors: for every position, a random partner inside its run (two permutations per run)."""
    first, second, start = [], [], 0
    for end in ends:
        first.append(torch.randperm(end - start) + start)
        second.append(torch.randperm(end - start) + start)
        start = end
    return torch.cat(first), torch.cat(second)


@register("selfreg", description="Self-supervised contrastive regularisation between same-class examples")
class SelfReg(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"cdpl": "kept: not stepped (as in DomainBed) and not drawn; BatchNorm statistics move in "
                           "training and are saved in checkpoints"}

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.cdpl = projection_mlp(featurizer.n_outputs)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        lam = float(np.random.beta(0.5, 0.5))
        y, order = torch.sort(y)
        x = x[order]
        ends = class_run_ends(y)
        features = self.featurizer(x)
        projection = self.cdpl(features)
        logits = self.classifier(features)
        first, second = (i.to(x.device) for i in same_class_partners(ends))
        logits_2, proj_2 = logits[first], projection[first]
        logits_3 = lam * logits_2 + (1 - lam) * logits[second]
        proj_3 = lam * proj_2 + (1 - lam) * projection[second]
        ind = F.mse_loss(logits, logits_2) + 0.3 * F.mse_loss(features, proj_2)
        hdl = F.mse_loss(logits, logits_3) + 0.3 * F.mse_loss(features, proj_3)
        ce = F.cross_entropy(logits, y)
        scale = ce.detach().clamp(max=1.0)
        loss = ce + scale * (lam * ind + (1 - lam) * hdl)
        self.step(loss)
        return {"loss": loss.detach()}


__all__ = ["SelfReg", "class_run_ends", "same_class_partners", "projection_mlp"]
