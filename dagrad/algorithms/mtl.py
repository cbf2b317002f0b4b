"""Marginal Transfer Learning (Blanchard et al. 2021) in DomainBed's neural form.

The classifier reads [features, embedding] (twice the feature width). During training each environment
keeps an exponential moving average of its mean feature (`embeddings`, rate `mtl_ema`); the loss is the
*sum* over environments of CE. DomainBed's quirk is kept so the numbers compare: the embedding half of
the classifier's input is overwritten in place with N(0, 1) noise (`.normal_()`) before the classifier
sees it, in training and in prediction, so the moving averages are kept but never read.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.registry import Option

MTL_HPARAMS = {"mtl_ema": Option(0.99, float, "moving-average rate of the domain embeddings", low=0.0, high=1.0,
                                 search=lambda r: float(r.choice([0.5, 0.9, 0.99, 1.0])))}


@register("mtl", hparams=MTL_HPARAMS,
          description="Marginal transfer learning: classifier on features + domain embedding")
class MTL(Algorithm):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"embeddings": "kept: a sampled epoch leaves the moving averages as they are; saved in checkpoints"}

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        self.featurizer = featurizer
        self.classifier = nn.Linear(2 * featurizer.n_outputs, num_classes)
        self.optimizer = torch.optim.Adam(
            list(self.featurizer.parameters()) + list(self.classifier.parameters()),
            lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"],
        )
        self.register_buffer("embeddings", torch.zeros(num_domains, featurizer.n_outputs))

    def embedding(self, features: Tensor, env: Optional[int] = None) -> Tensor:
        """The batch's mean feature, moved into environment `env`'s moving average when given, one row per example."""
        mean = features.mean(0)
        if env is not None:
            ema = self.hparams["mtl_ema"]
            mean = ema * mean + (1 - ema) * self.embeddings[env]
            self.embeddings[env] = mean.clone().detach()
        return mean.view(1, -1).repeat(len(features), 1)

    def predict(self, x: Tensor, env: Optional[int] = None) -> Tensor:
        features = self.featurizer(x)
        noise = self.embedding(features, env).normal_()  # DomainBed's in-place overwrite (module docstring)
        return self.classifier(torch.cat((features, noise), 1))

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        loss = 0.0
        for env, (x, y) in enumerate(minibatches):
            loss = loss + F.cross_entropy(self.predict(x, env), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}


__all__ = ["MTL", "MTL_HPARAMS"]
