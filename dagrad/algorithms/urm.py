"""URM (Bai et al., TMLR 2024, "Uniformly Distributed Feature Representations for Fair and Robust Learning")
as DomainBed runs it: the featurizer's output passes through `urm_generator_output` (tanh, relu or sigmoid),
and an MLP discriminator (featurizer width -> 100, LeakyReLU, `urm_discriminator_hidden_layers` x (100 ->
100, LeakyReLU), -> 1) learns to tell uniform noise on the activation's range ([-1, 1) for tanh, [0, 1)
otherwise) from the features.

Each update, over all environments in one forward pass: the network minimises mean CE + urm_adv_lambda *
BCE(D(features), 1) (the features should pass for noise); then the discriminator takes one step on
BCE(D(noise), 1) + urm_adv_lambda * BCE(D(features.detach()), 0), noise drawn with torch.rand like the
features; with `urm_discriminator_label_smoothing` s > 0 the targets are U(1 - s, 1) and U(0, s) (drawn after
the noise). The discriminator's optimizer is Adam (or SGD with momentum 0.9) with the run's weight decay.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

ACTIVATIONS = {"tanh": (nn.Tanh, -1.0, 1.0), "relu": (nn.ReLU, 0.0, 1.0), "sigmoid": (nn.Sigmoid, 0.0, 1.0)}


def urm_hparams(small_images: bool) -> dict[str, Option]:
    return {
        "urm": Option("adversarial", str, "URM variant", choices=("adversarial",), search=lambda r: "adversarial"),
        "urm_adv_lambda": Option(0.1, float, "weight of the adversarial terms", low=0.0,
                                 search=lambda r: float(r.uniform(0, 0.2))),
        "urm_discriminator_label_smoothing": Option(0, float, "width of the soft discriminator targets (0: hard)",
                                                    low=0.0, high=1.0, search=lambda r: float(r.uniform(0, 0))),
        "urm_discriminator_optimizer": Option("adam", str, "the discriminator's optimizer", choices=("adam", "sgd"),
                                              search=lambda r: "adam"),
        "urm_discriminator_hidden_layers": Option(1, int, "hidden 100-wide layers after the first", low=0,
                                                  search=lambda r: int(r.choice([1, 2, 3]))),
        "urm_generator_output": Option("tanh", str, "activation on the features (sets the noise's range)",
                                       choices=tuple(ACTIVATIONS), search=lambda r: str(r.choice(["tanh", "relu"]))),
        "urm_discriminator_lr": (
            Option(1e-3, float, "discriminator learning rate", low=0.0, low_open=True, search=log_uniform(-5.5, -3.5))
            if small_images else
            Option(5e-5, float, "discriminator learning rate", low=0.0, low_open=True, search=log_uniform(-6, -4.5))),
    }


class ActivatedFeaturizer(nn.Sequential):
    """A featurizer followed by an output activation, with the featurizer's `n_outputs`."""

    def __init__(self, featurizer: nn.Module, activation: nn.Module):
        super().__init__(featurizer, activation)
        self.n_outputs = featurizer.n_outputs


def discriminator(width: int, hidden_layers: int) -> nn.Sequential:
    """DomainBed's URM discriminator MLP."""
    layers: list[nn.Module] = [nn.Linear(width, 100), nn.LeakyReLU()]
    for _ in range(hidden_layers):
        layers += [nn.Linear(100, 100), nn.LeakyReLU()]
    return nn.Sequential(*layers, nn.Linear(100, 1))


@register("urm", hparams=urm_hparams,
          description="Uniform risk minimisation: features made indistinguishable from uniform noise (URM)")
class URM(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"discriminator": "kept by a sampled epoch (and its optimizer state); saved in checkpoints"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        activation, self.noise_low, self.noise_high = ACTIVATIONS[hparams["urm_generator_output"]]
        super().__init__(ActivatedFeaturizer(featurizer, activation()), num_classes, num_domains, hparams)
        self.discriminator = discriminator(self.featurizer.n_outputs, int(self.hparams["urm_discriminator_hidden_layers"]))
        lr, wd = self.hparams["urm_discriminator_lr"], self.hparams["weight_decay"]
        if self.hparams["urm_discriminator_optimizer"] == "sgd":
            self.discriminator_opt = torch.optim.SGD(self.discriminator.parameters(), lr=lr, weight_decay=wd, momentum=0.9)
        else:
            self.discriminator_opt = torch.optim.Adam(self.discriminator.parameters(), lr=lr, weight_decay=wd)

    def _discriminator_loss(self, features: Tensor) -> Tensor:
        features = features.detach()
        low, high = self.noise_low, self.noise_high
        noise = (high - low) * torch.rand(features.size(), dtype=features.dtype, device=features.device) + low
        noise_logits, feature_logits = self.discriminator(noise), self.discriminator(features)
        s = self.hparams["urm_discriminator_label_smoothing"]
        if s:
            true_y = (1.0 - (1 - s)) * torch.rand(len(noise), device=noise.device) + (1 - s)
            fake_y = (s - 0) * torch.rand(len(features), device=features.device) + 0
        else:
            true_y = torch.ones(len(noise), dtype=noise.dtype, device=noise.device)
            fake_y = torch.zeros(len(features), dtype=features.dtype, device=features.device)
        noise_loss = F.binary_cross_entropy_with_logits(noise_logits.squeeze(1), true_y)
        feature_loss = F.binary_cross_entropy_with_logits(feature_logits.squeeze(1), fake_y)
        return 1 * noise_loss + self.hparams["urm_adv_lambda"] * feature_loss

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        features = self.featurizer(torch.cat([x for x, _ in minibatches]))
        nll = F.cross_entropy(self.classifier(features), torch.cat([y for _, y in minibatches]), reduction="none").mean()
        logits = self.discriminator(features)
        fooled = F.binary_cross_entropy_with_logits(logits.squeeze(1), torch.ones(len(features), dtype=features.dtype,
                                                                                  device=features.device))
        loss = nll + self.hparams["urm_adv_lambda"] * fooled
        self.step(loss)
        d_loss = self._discriminator_loss(features)
        self.discriminator_opt.zero_grad()
        d_loss.backward()
        self.discriminator_opt.step()
        return {"loss": loss.detach(), "nll": nll.detach(), "d_loss": d_loss.detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer, "discriminator": self.discriminator_opt}


__all__ = ["URM", "urm_hparams", "discriminator", "ActivatedFeaturizer"]
