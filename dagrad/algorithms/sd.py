"""Spectral Decoupling (Pezeshki et al. 2021, Eq. 25) as DomainBed runs it: ERM on the pooled
environments plus sd_reg times the mean squared logit."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

SD_HPARAMS = {"sd_reg": Option(0.1, float, "weight of the squared-logit penalty", low=0.0, search=log_uniform(-5, -1))}


@register("sd", hparams=SD_HPARAMS, description="Spectral decoupling: ERM plus a squared-logit penalty")
class SD(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        logits = self.predict(x)
        loss = F.cross_entropy(logits, y)
        penalty = (logits ** 2).mean()
        self.step(loss + self.hparams["sd_reg"] * penalty)
        return {"loss": loss.detach(), "penalty": penalty.detach()}


__all__ = ["SD", "SD_HPARAMS"]
