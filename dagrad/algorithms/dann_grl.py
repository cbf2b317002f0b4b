"""DANN with a gradient-reversal layer (Ganin & Lempitsky 2015), the domain-adaptation form Dassl and
TLlib implement. DomainBed's alternating DG form is `dann`.

- A gradient-reversal layer (identity forward, -coeff * gradient backward) sits between the features
  and a domain discriminator, so one joint Adam step trains the discriminator to tell domains apart
  and the featurizer to confuse it: loss = CE(classifier(z_labelled), y) + domain_loss.
- coeff = grl_lambda * (2 / (1 + exp(-10 p)) - 1), p = self.progress (fraction of the training budget
  done, set by the engine): 0 at the start, ~0.987 * grl_lambda at p = 0.5, ~grl_lambda at the end.
- DA (`unlabeled` given): a binary source-vs-target discriminator, domain_loss = mean of the
  source-batch BCE and the target-batch BCE (TLlib's 0.5 * (BCE_s + BCE_t); Dassl sums the two).
- DG (`unlabeled` is None): WILDS' fallback, a num_domains-way discriminator over the training
  environments with cross-entropy. Both heads share one trunk and exist from the start (so the state
  dict and optimizer never change shape); the head a run does not use never gets a gradient.
- Discriminator: Dassl's head, Linear -> BatchNorm1d -> LeakyReLU twice, then Linear, width disc_width.
  The source and target features pass through it as one batch, so BatchNorm normalises them together
  (normalising each domain separately would hide a mean shift from the discriminator). BatchNorm in
  training mode needs more than one example per batch: use batch_size >= 2 in DG with one environment.
- Ganin used SGD with an annealed learning rate; dagrad uses one Adam (lr, weight_decay) like its other
  algorithms, so that GradSamp and energy comparisons see the same optimizer.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Identity in the forward pass; multiplies the incoming gradient by -coeff in the backward pass."""
    return _ReverseGradient.apply(x, float(coeff))


def grl_coefficient(progress: float, max_coeff: float = 1.0, alpha: float = 10.0) -> float:
    """Ganin's ramp max_coeff * (2 / (1 + exp(-alpha p)) - 1), p clipped to [0, 1]."""
    p = min(max(float(progress), 0.0), 1.0)
    return max_coeff * (2.0 / (1.0 + math.exp(-alpha * p)) - 1.0)


def dassl_discriminator_trunk(n_inputs: int, width: int) -> nn.Sequential:
    """Linear -> BatchNorm1d -> LeakyReLU, twice (Dassl's `mlp` head with bn=True, leaky_relu)."""
    return nn.Sequential(
        nn.Linear(n_inputs, width), nn.BatchNorm1d(width), nn.LeakyReLU(),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.LeakyReLU(),
    )


DANN_GRL_HPARAMS = {
    "grl_lambda": Option(1.0, float, "maximum gradient-reversal coefficient", low=0.0, search=log_uniform(-1, 1)),
    "disc_width": Option(1024, int, "discriminator width", low=1, search=lambda r: int(2 ** r.uniform(6, 10))),
}


@register(
    "dann_grl", hparams=DANN_GRL_HPARAMS,
    description="DANN with gradient reversal (Ganin & Lempitsky; DA source-vs-target, DG env fallback)",
)
class DANNGRL(Algorithm):
    """Gradient-reversal DANN; see the module docstring for the DA/DG discriminators and the ramp."""

    uses_unlabeled = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        width = featurizer.n_outputs
        disc_width = int(self.hparams["disc_width"])
        self.featurizer = featurizer
        self.classifier = nn.Linear(width, num_classes)
        self.discriminator = dassl_discriminator_trunk(width, disc_width)
        self.source_target_head = nn.Linear(disc_width, 1)
        self.environment_head = nn.Linear(disc_width, num_domains)
        self.optimizer = torch.optim.Adam(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )

    def grl_coeff(self) -> float:
        return grl_coefficient(self.progress, float(self.hparams["grl_lambda"]))

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        labelled = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        targets = list(unlabeled or [])
        n_source = len(labelled)
        z = self.featurizer(torch.cat([labelled, *targets]) if targets else labelled)
        class_loss = F.cross_entropy(self.classifier(z[:n_source]), y)
        coeff = self.grl_coeff()
        hidden = self.discriminator(reverse_gradient(z, coeff))
        if targets:
            logits = self.source_target_head(hidden).squeeze(1)
            is_target = torch.zeros(len(z), device=z.device)
            is_target[n_source:] = 1.0
            per_example = F.binary_cross_entropy_with_logits(logits, is_target, reduction="none")
            domain_loss = 0.5 * (per_example[:n_source].mean() + per_example[n_source:].mean())
            domain_acc = ((logits > 0).float() == is_target).float().mean()
        else:
            domains = torch.cat(
                [torch.full((len(x),), i, dtype=torch.long, device=z.device) for i, (x, _) in enumerate(minibatches)]
            )
            logits = self.environment_head(hidden)
            domain_loss = F.cross_entropy(logits, domains)
            domain_acc = (logits.argmax(1) == domains).float().mean()
        loss = class_loss + domain_loss
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            "loss": class_loss.detach(), "domain_loss": domain_loss.detach(),
            "domain_acc": domain_acc.detach(), "grl_coeff": coeff,
        }

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}
