"""MMD (Li et al. 2018, MMD-AAE's alignment term) as DomainBed runs it: per-environment cross-entropy plus
mmd_gamma times the mean over environment pairs of a Gaussian-kernel MMD between their features.

The kernel is a sum of exp(-g * ||a - b||^2) over g in {1e-3, ..., 1e3} (seven bandwidths), with squared
distances from ||a||^2 + ||b||^2 - 2 a.b clamped below at 1e-30, and MMD^2 = mean K(x, x) + mean K(y, y)
- 2 mean K(x, y) (the biased estimate, diagonal included).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.coral import CORAL_HPARAMS
from dagrad.algorithms.registry import register

BANDWIDTHS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """||a_i - b_j||^2 for all rows, clamped at 1e-30 (DomainBed's `my_cdist`)."""
    a_norm = a.pow(2).sum(-1, keepdim=True)
    b_norm = b.pow(2).sum(-1, keepdim=True)
    return torch.addmm(b_norm.transpose(-2, -1), a, b.transpose(-2, -1), alpha=-2).add_(a_norm).clamp_min_(1e-30)


def gaussian_kernel(a: Tensor, b: Tensor, bandwidths: tuple[float, ...] = BANDWIDTHS) -> Tensor:
    """sum_g exp(-g * ||a_i - b_j||^2)."""
    d = squared_distances(a, b)
    k = torch.zeros_like(d)
    for g in bandwidths:
        k.add_(torch.exp(d.mul(-g)))
    return k


def mmd(x: Tensor, y: Tensor) -> Tensor:
    """The biased Gaussian-kernel MMD^2 between two feature batches."""
    return gaussian_kernel(x, x).mean() + gaussian_kernel(y, y).mean() - 2 * gaussian_kernel(x, y).mean()


def pairwise_penalty(features: list[Tensor]) -> Tensor:
    """Mean of mmd over environment pairs i < j (zero for one environment)."""
    n = len(features)
    total = features[0].new_zeros(())
    for i in range(n):
        for j in range(i + 1, n):
            total = total + mmd(features[i], features[j])
    return total / (n * (n - 1) / 2) if n > 1 else total


@register("mmd", hparams=CORAL_HPARAMS, description="MMD feature alignment with a mixture of Gaussian kernels")
class MMD(FeaturizerClassifier):
    """Each environment's minibatch goes through the featurizer on its own (as in DomainBed)."""

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        features = [self.featurizer(x) for x, _ in minibatches]
        objective = 0.0
        for f, (_, y) in zip(features, minibatches):
            objective = objective + F.cross_entropy(self.classifier(f), y)
        objective = objective / len(minibatches)
        penalty = pairwise_penalty(features)
        self.step(objective + self.hparams["mmd_gamma"] * penalty)
        return {"loss": objective.detach(), "penalty": penalty.detach()}


__all__ = ["MMD", "mmd", "gaussian_kernel", "pairwise_penalty", "BANDWIDTHS"]
