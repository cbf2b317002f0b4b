"""Conditional DANN (Li et al. 2018, CIDDG) as DomainBed runs it: `AbstractDANN(conditional=True,
class_balance=True)`, otherwise DomainBed's DANN (see dann.py for the step schedule and kept quirks).

- the discriminator reads z + class_embedding(y), so the domain is predicted given the class;
- the discriminator loss is class-balanced: sum_i CE_i / (count(y_i) * K), where count comes from
  one_hot(y) over the batch and K is that one-hot's width (the largest label in the batch + 1);
- the gradient penalty (when grad_penalty > 0) is taken with respect to the discriminator's input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dagrad.algorithms.dann import DANN, dann_hparams
from dagrad.algorithms.registry import register


def class_balanced_loss(out: torch.Tensor, domains: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_i CE(out_i, domain_i) / (count(y_i) * K), as in DomainBed's class_balance branch."""
    counts = F.one_hot(y).sum(dim=0)
    weights = 1.0 / (counts[y] * counts.shape[0]).float()
    return (weights * F.cross_entropy(out, domains, reduction="none")).sum()


@register("cdann", hparams=dann_hparams,
          description="Conditional DANN: class-conditional, class-balanced domain discriminator (DomainBed)")
class CDANN(DANN):
    def discriminator_input(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return z + self.class_embeddings(y)

    def discriminator_loss(self, out: torch.Tensor, domains: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return class_balanced_loss(out, domains, y)


__all__ = ["CDANN", "class_balanced_loss"]
