"""CORAL as DomainBed (`AbstractMMD(gaussian=False)`) and SWAD implement it: per-environment cross-entropy
plus mmd_gamma times a pairwise penalty on feature means and covariances.

This is not the original Deep CORAL loss (1/(4d^2)·||C_s - C_t||_F^2 between two domains): every anchor
(DomainBed, SWAD, WILDS, TLlib) uses mean((mu_i - mu_j)^2) + mean((C_i - C_j)^2) with the unbiased
(B - 1) covariance, averaged over all pairs of environments, and so does dagrad.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.utils.errors import ConfigError
from dagrad.registry import Option


def _mean_and_covariance(f: Tensor) -> tuple[Tensor, Tensor]:
    mean = f.mean(0, keepdim=True)
    centred = f - mean
    return mean, centred.t() @ centred / (len(f) - 1)


def coral_penalty(features: list[Tensor]) -> Tensor:
    """Mean over environment pairs i<j of mean_k((mu_i-mu_j)_k^2) + mean_kl((C_i-C_j)_kl^2).

    `features` holds one (batch, width) tensor per environment; each needs at least 2 rows for the
    unbiased covariance. Fewer than two environments: a zero penalty (nothing to align).
    """
    if not features:
        raise ValueError("coral_penalty: expected at least one feature tensor, got an empty list")
    for i, f in enumerate(features):
        if f.dim() != 2:
            raise ValueError(f"coral_penalty: features[{i}] must be (batch, width), got shape {tuple(f.shape)}")
        if len(f) < 2:
            raise ConfigError(
                f"CORAL: environment {i} has a batch of {len(f)} example(s); the covariance needs batch_size >= 2"
            )
    if len(features) < 2:
        return features[0].new_zeros(())
    stats = [_mean_and_covariance(f) for f in features]
    total = features[0].new_zeros(())
    pairs = 0
    for i in range(len(stats)):
        for j in range(i + 1, len(stats)):
            (mu_i, c_i), (mu_j, c_j) = stats[i], stats[j]
            total = total + (mu_i - mu_j).pow(2).mean() + (c_i - c_j).pow(2).mean()
            pairs += 1
    return total / pairs


CORAL_HPARAMS = {"mmd_gamma": Option(1.0, float, "weight of the alignment penalty", low=0.0, search=log_uniform(-1, 1))}


@register(
    "coral", hparams=CORAL_HPARAMS,
    description="Deep CORAL as DomainBed/SWAD implement it (mean + covariance alignment)",
)
class CORAL(FeaturizerClassifier):
    """Featurizer + linear classifier, one Adam over both (lr, weight_decay).

    Each environment's minibatch goes through the featurizer on its own (as in DomainBed, which matters
    for BatchNorm in training mode). In the DA setting each unlabelled target minibatch joins the
    alignment penalty as one more environment; the classification loss uses labelled data only.
    """

    uses_unlabeled = True

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        features = [self.featurizer(x) for x, _ in minibatches]
        objective = torch.stack(
            [F.cross_entropy(self.classifier(f), y) for f, (_, y) in zip(features, minibatches)]
        ).mean()
        aligned = features + [self.featurizer(x) for x in (unlabeled or [])]
        penalty = coral_penalty(aligned)
        loss = objective + self.hparams["mmd_gamma"] * penalty
        self.step(loss)
        return {"loss": objective.detach(), "penalty": penalty.detach()}


__all__ = ["CORAL", "coral_penalty", "CORAL_HPARAMS"]
