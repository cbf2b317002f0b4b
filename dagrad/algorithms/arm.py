"""Adaptive Risk Minimization, ARM-CML (Zhang et al. 2021), as DomainBed runs it.

A context network (three 5x5 convolutions, 64 channels, BatchNorm, same size, one output channel) maps
each image to a context map; the maps are averaged over each "support set" of `support_size`
consecutive examples and appended to every image as one more input channel, and the featurizer (built
for channels + 1) and classifier predict from that. The support size is the training batch per
environment, so during training each environment's minibatch is one support set; a batch that is not
a multiple of it is one support set.

DomainBed's quirks, kept so the numbers compare:
- the Adam optimizer is built (by ERM) before the context network exists, so the context network is
  never stepped: only its BatchNorm statistics move. dagrad likewise steps featurizer + classifier only,
  and a sampled epoch draws only those (the context net is kept as it is);
- the support size is DomainBed's `batch_size` hyperparameter; dagrad takes it from the training
  minibatches (the same number) and keeps it in a buffer, so evaluation after resume uses it too.
On full-size images DomainBed fixes ARM's batch size at 8; dagrad's random search does the same.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.utils.errors import ConfigError


def context_net(channels: int) -> nn.Sequential:
    """DomainBed's ContextNet: conv5-BN-ReLU, conv5-BN-ReLU, conv5 to one channel, sizes kept."""
    return nn.Sequential(
        nn.Conv2d(channels, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 1, 5, padding=2),
    )


@register("arm", description="Adaptive risk minimisation (ARM-CML): a context channel from each support set")
class ARM(FeaturizerClassifier):
    extra_input_channels = 1
    full_size_batch_size = 8
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"context_net": "kept: not stepped (as in DomainBed) and not drawn; BatchNorm statistics "
                                  "move in training and are saved in checkpoints",
                   "support_size": "the training batch per environment, saved in checkpoints"}

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict,
                 input_shape: Optional[tuple[int, ...]] = None):
        if input_shape is None or len(input_shape) != 3:
            raise ConfigError(f"ARM needs image inputs (channels, height, width), got input shape {input_shape}")
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.context_net = context_net(input_shape[0])
        self.register_buffer("support_size", torch.zeros((), dtype=torch.long))
        self._support = 0
        self.register_load_state_dict_post_hook(_support_from_buffer)

    def predict(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        support = self._support if self._support and n % self._support == 0 else n
        context = self.context_net(x).reshape(n // support, support, 1, h, w).mean(dim=1)
        context = torch.repeat_interleave(context, repeats=support, dim=0)
        return self.network(torch.cat([x, context], dim=1))

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        if self._support != len(minibatches[0][0]):
            self._support = len(minibatches[0][0])
            self.support_size.fill_(self._support)
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.predict(x), y)
        self.step(loss)
        return {"loss": loss.detach()}


def _support_from_buffer(module: ARM, incompatible_keys: object) -> None:
    module._support = int(module.support_size)


__all__ = ["ARM", "context_net"]
