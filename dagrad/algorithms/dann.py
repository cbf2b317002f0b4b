"""DANN as DomainBed (and SWAD) run it for domain generalization: `AbstractDANN(conditional=False,
class_balance=False)`.

This is *not* Ganin & Lempitsky's gradient-reversal DANN (that one is `dann_grl`). Differences:
- no gradient-reversal layer: a multi-class discriminator over the training environments and the
  generator (featurizer + classifier) take turns, each with its own Adam (betas (beta1, 0.9));
- update k (counting from 1) is a discriminator step if k % (1 + d_steps_per_g_step) < d_steps_per_g_step,
  else a generator step with loss CE(classifier(z), y) - lambda * disc_loss. With d_steps_per_g_step = 1
  the steps go G, D, G, D, ..., so 5,001 updates hold 2,501 generator steps;
- the target domain is never seen (`unlabeled` is ignored).

DomainBed's quirks, kept so numbers compare:
- disc_loss includes grad_penalty * gp, so the generator objective also subtracts
  lambda * grad_penalty * gp;
- z is not detached, so discriminator steps still backpropagate through the featurizer (wasted compute,
  visible on the energy axis); the featurizer's gradients are discarded by the next generator step;
- `class_embeddings` (used only by conditional DANN) exists and is in the discriminator optimizer;
- `lr` and `weight_decay` are in the hyperparameter table but unused (lr_d/lr_g, weight_decay_d/_g rule).
One deliberate difference: the gradient penalty (CE-sum formula of DomainBed's 2022 fix) is computed
only when grad_penalty > 0; DomainBed always builds it, then multiplies it by 0 at the defaults.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.registry import common_hparams, log_uniform, register
from dagrad.registry import Option


def domainbed_mlp(n_inputs: int, n_outputs: int, width: int, depth: int, dropout: float) -> nn.Sequential:
    """DomainBed's `networks.MLP`: Linear->Dropout->ReLU, (depth-2) x [Linear->Dropout->ReLU], Linear."""
    if depth < 2 or width < 1:
        raise ValueError(f"an MLP needs depth >= 2 and width >= 1, got depth {depth}, width {width}")
    layers: list[nn.Module] = [nn.Linear(n_inputs, width), nn.Dropout(dropout), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.Dropout(dropout), nn.ReLU()]
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def dann_hparams(small_images: bool) -> dict[str, Option]:
    """DomainBed's DANN hyperparameters; learning rates and weight decays follow the dataset's defaults."""
    common = common_hparams(small_images)
    return {
        "lambda": Option(1.0, float, "weight of the adversarial term", low=0.0, search=log_uniform(-2, 2)),
        "lr_d": common["lr"],
        "lr_g": common["lr"],
        # DomainBed draws the discriminator's weight decay for every dataset, the digits included
        "weight_decay_d": Option(0.0, float, "discriminator Adam weight decay", low=0.0, search=log_uniform(-6, -2)),
        "weight_decay_g": common["weight_decay"],
        "d_steps_per_g_step": Option(1, int, "discriminator steps per generator step", low=1,
                                     search=lambda r: int(2 ** r.uniform(0, 3))),
        "grad_penalty": Option(0.0, float, "discriminator gradient penalty", low=0.0, search=log_uniform(-2, 1)),
        "beta1": Option(0.5, float, "Adam beta1 of both optimizers", low=0.0, high=1.0, high_open=True,
                        search=lambda r: float(r.choice([0.0, 0.5]))),
        "mlp_width": Option(256, int, "discriminator width", low=1, search=lambda r: int(2 ** r.uniform(6, 10))),
        "mlp_depth": Option(3, int, "discriminator depth (layers)", low=2, search=lambda r: int(r.choice([3, 4, 5]))),
        "mlp_dropout": Option(0.0, float, "discriminator dropout", low=0.0, high=1.0, high_open=True,
                              search=lambda r: float(r.choice([0.0, 0.1, 0.5]))),
    }


@register(
    "dann", hparams=dann_hparams,
    description="DANN as DomainBed runs it (alternating multi-class env discriminator; no GRL)",
)
class DANN(Algorithm):
    """DomainBed's DANN for domain generalization (see the module docstring for the exact schedule)."""

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        h = self.hparams
        width = featurizer.n_outputs
        # the count lives on the host (choosing the step must not wait for the GPU); the buffer mirrors it
        # for checkpoints, and a loaded state dict sets the host count back from the buffer
        self.register_buffer("update_count", torch.zeros((), dtype=torch.long))
        self.updates_done = 0
        self.register_load_state_dict_post_hook(_count_from_buffer)
        self.featurizer = featurizer
        self.classifier = nn.Linear(width, num_classes)
        self.discriminator = domainbed_mlp(
            width, num_domains, int(h["mlp_width"]), int(h["mlp_depth"]), float(h["mlp_dropout"])
        )
        self.class_embeddings = nn.Embedding(num_classes, width)
        betas = (float(h["beta1"]), 0.9)
        self.disc_opt = torch.optim.Adam(
            list(self.discriminator.parameters()) + list(self.class_embeddings.parameters()),
            lr=h["lr_d"], weight_decay=h["weight_decay_d"], betas=betas,
        )
        self.gen_opt = torch.optim.Adam(
            list(self.featurizer.parameters()) + list(self.classifier.parameters()),
            lr=h["lr_g"], weight_decay=h["weight_decay_g"], betas=betas,
        )

    @property
    def flops_period(self) -> int:
        return 1 + int(self.hparams["d_steps_per_g_step"])

    def is_discriminator_step(self, count: int) -> bool:
        """Whether update number `count` (1-based) steps the discriminator rather than the generator."""
        d = int(self.hparams["d_steps_per_g_step"])
        return count % (1 + d) < d

    def discriminator_input(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the discriminator reads: the features (CDANN adds the class embedding)."""
        return z

    def discriminator_loss(self, out: torch.Tensor, domains: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The discriminator's cross-entropy (CDANN weights it by class)."""
        return F.cross_entropy(out, domains)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        self.updates_done += 1
        self.update_count.fill_(self.updates_done)
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        domains = torch.cat(
            [torch.full((len(xi),), i, dtype=torch.long, device=xi.device) for i, (xi, _) in enumerate(minibatches)]
        )
        z = self.featurizer(x)
        disc_input = self.discriminator_input(z, y)
        disc_out = self.discriminator(disc_input)
        disc_loss = self.discriminator_loss(disc_out, domains, y)
        stats = {"disc_acc": (disc_out.argmax(1) == domains).float().mean().detach()}
        if self.hparams["grad_penalty"] > 0:
            grad = torch.autograd.grad(
                F.cross_entropy(disc_out, domains, reduction="sum"), [disc_input], create_graph=True
            )[0]
            gp = grad.pow(2).sum(1).mean()
            disc_loss = disc_loss + self.hparams["grad_penalty"] * gp
            stats["grad_penalty"] = gp.detach()

        if self.is_discriminator_step(self.updates_done):
            self.disc_opt.zero_grad()
            disc_loss.backward()
            self.disc_opt.step()
            return {"disc_loss": disc_loss.detach(), **stats}

        class_loss = F.cross_entropy(self.classifier(z), y)
        gen_loss = class_loss - self.hparams["lambda"] * disc_loss
        self.disc_opt.zero_grad()
        self.gen_opt.zero_grad()
        gen_loss.backward()
        self.gen_opt.step()
        return {"gen_loss": gen_loss.detach(), "loss": class_loss.detach(), "disc_loss": disc_loss.detach(), **stats}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"disc": self.disc_opt, "gen": self.gen_opt}


def _count_from_buffer(module: DANN, incompatible_keys: object) -> None:
    """After load_state_dict: the host count continues from the checkpoint's (one read, at load time only)."""
    module.updates_done = int(module.update_count)
