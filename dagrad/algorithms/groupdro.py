"""GroupDRO (Sagawa et al. 2020, Algorithm 1) as DomainBed runs it, environments as groups.

Each environment's minibatch goes through the network on its own. Then q_e <- q_e * exp(eta * CE_e)
(CE detached), q <- q / sum(q), and the loss is sum_e q_e * CE_e. q starts at all ones and lives in a
buffer, so checkpoints carry it; a sampled epoch draws only the network and keeps q.
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


def update_group_weights(q: Tensor, losses: Tensor, eta: float) -> Tensor:
    """q * exp(eta * losses), normalised to sum 1 (in place on q, which is returned)."""
    q.mul_((eta * losses.detach()).exp())
    q.div_(q.sum())
    return q


GROUPDRO_HPARAMS = {"groupdro_eta": Option(1e-2, float, "step size of the group weights", low=0.0,
                                           search=log_uniform(-3, -1))}


@register("groupdro", hparams=GROUPDRO_HPARAMS, description="Group DRO: minimise a soft worst-environment risk")
class GroupDRO(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"q": "kept: a sampled epoch leaves the group weights as they are; saved in checkpoints"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.register_buffer("q", torch.ones(num_domains))

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        if len(minibatches) != len(self.q):
            raise ConfigError(f"GroupDRO: built for {len(self.q)} training environments, given {len(minibatches)}")
        losses = torch.stack([F.cross_entropy(self.predict(x), y) for x, y in minibatches])
        q = update_group_weights(self.q, losses, self.hparams["groupdro_eta"])
        loss = torch.dot(losses, q)
        self.step(loss)
        return {"loss": loss.detach()}


__all__ = ["GroupDRO", "update_group_weights", "GROUPDRO_HPARAMS"]
