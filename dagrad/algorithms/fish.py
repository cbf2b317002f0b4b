"""Fish (Shi et al. 2022, gradient matching) as DomainBed runs it.

Each update copies the network's weights into an inner network, which takes one Adam step per training
environment in order (its Adam state carries over from update to update, as DomainBed reloads it), then
every entry of the network's state (parameters and buffers) moves meta_lr of the way to the inner
network's: theta <- theta + meta_lr * (theta_inner - theta). The outer Adam is never stepped (DomainBed
builds one; its state stays empty).

State: the inner network is a registered submodule, so its weights and its optimizer's state travel in
checkpoints; a sampled epoch draws only `network` (featurizer + classifier), and the next update copies
the drawn weights into the inner network.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.registry import Option

FISH_HPARAMS = {"meta_lr": Option(0.5, float, "fraction of the way to the inner network's weights", low=0.0,
                                  high=1.0, search=lambda r: float(r.choice([0.05, 0.1, 0.5])))}


@register("fish", hparams=FISH_HPARAMS, description="Fish: inter-domain gradient matching by a first-order inner loop")
class Fish(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"network_inner": "reset from the network at every update; its Adam state is kept across "
                                    "updates, resume and sampled epochs (saved in checkpoints as optimizer 'inner')"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.network_inner = copy.deepcopy(self.network)
        self.optimizer_inner = torch.optim.Adam(self.network_inner.parameters(), lr=self.hparams["lr"],
                                                weight_decay=self.hparams["weight_decay"])

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        with torch.no_grad():
            for inner, outer in zip(self.network_inner.state_dict().values(), self.network.state_dict().values()):
                inner.copy_(outer)
        for x, y in minibatches:
            loss = F.cross_entropy(self.network_inner(x), y)
            self.optimizer_inner.zero_grad()
            loss.backward()
            self.optimizer_inner.step()
        meta_lr = self.hparams["meta_lr"]
        with torch.no_grad():
            for outer, inner in zip(self.network.state_dict().values(), self.network_inner.state_dict().values()):
                outer.copy_(outer + meta_lr * (inner - outer))
        return {"loss": loss.detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer, "inner": self.optimizer_inner}


__all__ = ["Fish", "FISH_HPARAMS"]
