"""Style-Agnostic Networks (Nam et al. 2021, Algorithm 1) in DomainBed's form: a featurizer, a content
classifier and a style classifier (both linear on the features), each with its own Adam.

`randomize` normalises each example's features (over the last axis, unbiased variance, eps 1e-5), then
either mixes each example's mean and variance with those of a random other example (alpha ~ U(0, 1) per
example: "style") or swaps the normalised content for a random other example's, detached ("content").
One update: (1) featurizer + content classifier step on CE of style-randomised features; (2) the style
classifier steps on CE of content-randomised features; (3) the featurizer steps on sag_w_adv times the
negative mean log-softmax of the style classifier on content-randomised features (pushing it to uniform).
Prediction: content classifier on plain features.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def randomize(x: Tensor, what: str = "style", eps: float = 1e-5) -> Tensor:
    """SagNet's randomisation of a (batch, features) or (batch, channels, h, w) tensor (see the docstring).

    Draws alpha with torch.rand on the CPU then a permutation with torch.randperm, as DomainBed does."""
    sizes = x.size()
    alpha = torch.rand(sizes[0], 1).to(x.device)
    if len(sizes) == 4:
        x = x.view(sizes[0], sizes[1], -1)
        alpha = alpha.unsqueeze(-1)
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True)
    x = (x - mean) / (var + eps).sqrt()
    swap = torch.randperm(sizes[0])
    if what == "style":
        mean = alpha * mean + (1 - alpha) * mean[swap]
        var = alpha * var + (1 - alpha) * var[swap]
    else:
        x = x[swap].detach()
    return (x * (var + eps).sqrt() + mean).view(*sizes)


SAGNET_HPARAMS = {"sag_w_adv": Option(0.1, float, "weight of the adversarial style loss", low=0.0,
                                      search=log_uniform(-2, 1))}


@register("sagnet", hparams=SAGNET_HPARAMS, description="Style-agnostic networks: content/style randomisation")
class SagNet(Algorithm):
    state_rules = {"network_s": "the style classifier is a trainable part: drawn by a sampled epoch, saved in "
                                "checkpoints"}

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        self.network_f = featurizer
        self.network_c = nn.Linear(featurizer.n_outputs, num_classes)
        self.network_s = nn.Linear(featurizer.n_outputs, num_classes)

        def adam(module: nn.Module) -> torch.optim.Adam:
            return torch.optim.Adam(module.parameters(), lr=self.hparams["lr"],
                                    weight_decay=self.hparams["weight_decay"])

        self.optimizer_f = adam(self.network_f)
        self.optimizer_c = adam(self.network_c)
        self.optimizer_s = adam(self.network_s)

    def forward_c(self, x: Tensor) -> Tensor:
        return self.network_c(randomize(self.network_f(x), "style"))

    def forward_s(self, x: Tensor) -> Tensor:
        return self.network_s(randomize(self.network_f(x), "content"))

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        self.optimizer_f.zero_grad()
        self.optimizer_c.zero_grad()
        loss_c = F.cross_entropy(self.forward_c(x), y)
        loss_c.backward()
        self.optimizer_f.step()
        self.optimizer_c.step()

        self.optimizer_s.zero_grad()
        loss_s = F.cross_entropy(self.forward_s(x), y)
        loss_s.backward()
        self.optimizer_s.step()

        self.optimizer_f.zero_grad()
        loss_adv = self.hparams["sag_w_adv"] * -F.log_softmax(self.forward_s(x), dim=1).mean(1).mean()
        loss_adv.backward()
        self.optimizer_f.step()
        return {"loss": loss_c.detach(), "loss_s": loss_s.detach(), "loss_adv": loss_adv.detach()}

    def predict(self, x: Tensor) -> Tensor:
        return self.network_c(self.network_f(x))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"featurizer": self.optimizer_f, "content": self.optimizer_c, "style": self.optimizer_s}


__all__ = ["SagNet", "randomize", "SAGNET_HPARAMS"]
