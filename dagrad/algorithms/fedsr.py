"""FedSR's client-side regulariser: a probabilistic representation kept simple.

Nguyen, Torr, Lim, "FedSR: A Simple and Effective Domain Generalization Method for Federated Learning",
NeurIPS 2022 (reference code: atuannguyen/FedSR, src/methods/FedSR.py and base.py). As there:

- the featurizer's output goes through one linear layer to 2·z_dim numbers, the mean mu and (through a
  softplus) the standard deviation sigma of z ~ N(mu, sigma); training draws one reparameterised sample
  and classifies it with a linear layer;
- L2R is the mean over the batch of ||z||_2 (the reference takes the norm, not its square);
- CMI is the KL divergence from N(C·mu, C·sigma) to the label's learned reference marginal N(r_mu[y],
  softplus(r_sigma[y])), summed over z's dimensions and averaged over the batch; r_mu starts at 0,
  r_sigma at 1 and the scale C at 1, all three trained with the model;
- the objective is cross-entropy + alpha_L2R · L2R + alpha_CMI · CMI (defaults 0.01 and 5e-4, the
  reference's); a coefficient of 0 skips its term;
- prediction in eval mode averages the softmax over `num_samples` (20) draws and returns its log.

The reference keeps r_mu, r_sigma and C on each client (only the network is averaged): `LOCAL_STATE`
names them for a federated strategy. dagrad's choices: one Adam over everything (dagrad's algorithms'
optimizer; the reference uses SGD with momentum), and eval-mode draws from a generator seeded 0 on each
call, so evaluation is deterministic and leaves the global random stream alone.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

#: the state a client keeps to itself (the reference averages only the network)
LOCAL_STATE = ("reference_mu", "reference_sigma", "reference_scale")


def split_representation(params: Tensor, z_dim: int) -> tuple[Tensor, Tensor]:
    """(mu, sigma) from a (batch, 2·z_dim) tensor: the first half, and the softplus of the second."""
    if params.dim() != 2 or params.shape[1] != 2 * z_dim:
        raise ValueError(f"split_representation: expected (batch, {2 * z_dim}), got {tuple(params.shape)}")
    return params[:, :z_dim], F.softplus(params[:, z_dim:])


def l2r_penalty(z: Tensor) -> Tensor:
    """Mean over the batch of the L2 norm of each representation (the reference's regL2R)."""
    return z.norm(dim=1).mean()


def cmi_penalty(z_mu: Tensor, z_sigma: Tensor, y: Tensor, reference_mu: Tensor, reference_sigma: Tensor,
                scale: Tensor) -> Tensor:
    """Mean over the batch of KL(N(C·mu, C·sigma) || N(r_mu[y], softplus(r_sigma)[y])), summed over
    dimensions; `reference_sigma` is the raw parameter (before softplus), `scale` the scalar C."""
    r_mu, r_sigma = reference_mu[y], F.softplus(reference_sigma)[y]
    mu, sigma = z_mu * scale, z_sigma * scale
    kl = torch.log(r_sigma) - torch.log(sigma) + (sigma ** 2 + (mu - r_mu) ** 2) / (2 * r_sigma ** 2) - 0.5
    return kl.sum(1).mean()


def fedsr_hparams(small_images: bool) -> dict[str, Option]:
    return {
        "l2r_coeff": Option(1e-2, float, "weight of the L2 norm of the representation (alpha_L2R)", low=0.0,
                            search=log_uniform(-4, -1)),
        "cmi_coeff": Option(5e-4, float, "weight of the conditional mutual information bound (alpha_CMI)",
                            low=0.0, search=log_uniform(-4, -2)),
        "z_dim": Option(None, int, "width of the representation z (null: the featurizer's width)", low=1,
                        nullable=True),
        "num_samples": Option(20, int, "draws of z averaged at prediction (eval mode)", low=1),
    }


@register("fedsr", hparams=fedsr_hparams,
          description="FedSR (NeurIPS 2022): probabilistic representation with L2 and conditional MI regularisers")
class FedSR(Algorithm):
    """Featurizer -> linear to (mu, sigma) of z -> one draw -> linear classifier, trained on the pooled
    minibatches with FedSR's objective. `update` reports the cross-entropy, L2R and CMI."""

    #: what a federated client keeps to itself (dagrad.federated.adjust.local_keys)
    LOCAL_STATE = LOCAL_STATE

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        self.z_dim = int(self.hparams.get("z_dim") or featurizer.n_outputs)
        self.featurizer = featurizer
        self.head = nn.Linear(featurizer.n_outputs, 2 * self.z_dim)
        self.classifier = nn.Linear(self.z_dim, num_classes)
        self.reference_mu = nn.Parameter(torch.zeros(num_classes, self.z_dim))
        self.reference_sigma = nn.Parameter(torch.ones(num_classes, self.z_dim))
        self.reference_scale = nn.Parameter(torch.ones(()))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams["lr"],
                                          weight_decay=self.hparams["weight_decay"])

    def represent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The mean and standard deviation of z for a batch of inputs."""
        return split_representation(self.head(self.featurizer(x)), self.z_dim)

    def objective(self, x: Tensor, y: Tensor) -> tuple[Tensor, Stats]:
        """FedSR's training objective on one batch (one draw of z from the global random stream)."""
        z_mu, z_sigma = self.represent(x)
        z = z_mu + z_sigma * torch.randn_like(z_mu)
        loss = F.cross_entropy(self.classifier(z), y)
        l2r = l2r_penalty(z)
        cmi = cmi_penalty(z_mu, z_sigma, y, self.reference_mu, self.reference_sigma, self.reference_scale)
        total = loss
        if self.hparams["l2r_coeff"] != 0:
            total = total + self.hparams["l2r_coeff"] * l2r
        if self.hparams["cmi_coeff"] != 0:
            total = total + self.hparams["cmi_coeff"] * cmi
        return total, {"loss": loss.detach(), "l2r": l2r.detach(), "cmi": cmi.detach()}

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[Tensor]] = None) -> Stats:
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        total, stats = self.objective(x, y)
        self.optimizer.zero_grad()
        total.backward()
        self.optimizer.step()
        return stats

    def predict(self, x: Tensor) -> Tensor:
        """Training mode: logits of one draw. Eval mode: log of the softmax averaged over num_samples draws."""
        z_mu, z_sigma = self.represent(x)
        if self.training:
            return self.classifier(z_mu + z_sigma * torch.randn_like(z_mu))
        samples = int(self.hparams.get("num_samples", 20))
        generator = torch.Generator(device=z_mu.device).manual_seed(0)
        noise = torch.randn((samples, *z_mu.shape), generator=generator, device=z_mu.device, dtype=z_mu.dtype)
        probabilities = torch.softmax(self.classifier(z_mu + z_sigma * noise), dim=-1).mean(0)
        return torch.log(probabilities)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}


__all__ = ["FedSR", "LOCAL_STATE", "cmi_penalty", "fedsr_hparams", "l2r_penalty", "split_representation"]
