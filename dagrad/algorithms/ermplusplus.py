"""ERM++ (Teterwak et al. 2025, "ERM++: An Improved Baseline for Domain Generalization") as DomainBed
defines it (`ERMPlusPlus`), on the backbone the `*_domainbed2024` presets name (timm `resnet50.ram_in1k`,
DomainBed's `resnet50_augmix`, weights from a file the user provides).

- Linear probe: while at most `linear_steps` updates are done, only the classifier's optimizer steps
  (lr `linear_lr`); afterwards the main optimizer over featurizer and classifier (lr `lr`).
- Optimizers: Adam, or LARS with `lars` (momentum 0.9, trust coefficient 1e-3; tensors of one dimension or
  fewer get neither rate scaling nor weight decay). DomainBed's LARS rejects the `foreach` argument its
  ERM++ passes, so `lars` fails there; dagrad's runs.
- Moving average: after every update the averaged network (used by `predict`) becomes a copy of the network
  while fewer than 600 updates are done, then the running mean of the network's states from then on (every
  state entry but BatchNorm's batch counters); unless BatchNorm is frozen, the averaged network then runs
  the batch in training mode, so its BatchNorm statistics follow its own weights.
- ReduceLROnPlateau (mode min, patience 1, factor 0.1, relative threshold 1e-4) on the main optimizer,
  stepped with each epoch's validation loss (the mean over training environments of their held-out
  split's loss, of the averaged network) once the linear probe is over; at the third reduction the rate
  becomes 0, as DomainBed's `set_lr` records it. (DomainBed's train.py never calls `set_lr`.)
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

SMA_START, PATIENCE, FACTOR, THRESHOLD, LAST_CHANGE = 600, 1, 0.1, 1e-4, 3

ERMPP_HPARAMS = {
    "linear_lr": Option(5e-5, float, "learning rate of the linear probe", low=0.0, low_open=True,
                        search=log_uniform(-5, -3.5)),
    "linear_steps": Option(500, int, "updates of the classifier alone before the whole network trains", low=0,
                           search=lambda r: 500),
    "lars": Option(False, bool, "LARS instead of Adam for both optimizers", search=lambda r: False),
}


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratio: for tensors of 2+ dimensions the gradient (plus
    weight_decay * p) is scaled by trust_coefficient * ||p|| / ||update|| (1 when either norm is 0)."""

    def __init__(self, params, lr: float = 0.0, weight_decay: float = 0.0, momentum: float = 0.9,
                 trust_coefficient: float = 0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D401 - torch's signature
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    update = update.add(p, alpha=group["weight_decay"])
                    p_norm, u_norm = torch.norm(p), torch.norm(update)
                    one = torch.ones_like(p_norm)
                    ratio = torch.where(p_norm > 0.0, torch.where(u_norm > 0, group["trust_coefficient"] * p_norm / u_norm,
                                                                  one), one)
                    update = update.mul(ratio)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                state["mu"].mul_(group["momentum"]).add_(update)
                p.add_(state["mu"], alpha=-group["lr"])


def _optimizer(params, lr: float, weight_decay: float, lars: bool) -> torch.optim.Optimizer:
    if lars:
        return LARS(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=False)


@register("ermplusplus", hparams=ERMPP_HPARAMS,
          description="ERM++: linear probe, then full training with a moving-average model and plateau LR (ERM++)")
class ERMPlusPlus(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {
        "network_sma": "kept by a sampled epoch (it keeps averaging the network from there); saved in checkpoints",
        "global_iter, sma_count": "kept: count the updates actually run; saved in checkpoints",
        "plateau_*": "kept: the plateau schedule's best loss, bad epochs and reductions; saved in checkpoints",
    }

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp, lars = self.hparams, bool(self.hparams["lars"])
        self.optimizer = _optimizer(self.network.parameters(), hp["lr"], hp["weight_decay"], lars)
        self.linear_optimizer = _optimizer(self.classifier.parameters(), hp["linear_lr"], hp["weight_decay"], lars)
        self.network_sma = copy.deepcopy(self.network)
        self.network_sma.eval()
        self.sma_start = SMA_START
        for name in ("global_iter", "sma_count", "plateau_bad", "plateau_changes"):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))
        self.register_buffer("plateau_best", torch.tensor(float("inf"), dtype=torch.float64))

    def _update_sma(self) -> None:
        self.global_iter += 1
        own, sma = self.network.state_dict(), self.network_sma.state_dict()
        averaging = int(self.global_iter) >= self.sma_start
        if averaging:
            self.sma_count += 1
        count = int(self.sma_count)
        with torch.no_grad():
            for name, value in own.items():
                if "num_batches_tracked" in name:
                    continue
                sma[name].copy_((sma[name].clone() * count + value.clone()) / (1.0 + count) if averaging else value)

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        probing = int(self.global_iter) <= int(self.hparams["linear_steps"])
        optimizer = self.linear_optimizer if probing else self.optimizer
        x = torch.cat([x for x, _ in minibatches])
        loss = F.cross_entropy(self.network(x), torch.cat([y for _, y in minibatches]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        self._update_sma()
        if not getattr(self.featurizer, "freeze_bn", False):
            self.network_sma.train()
            with torch.no_grad():
                self.network_sma(x)
        return {"loss": loss.detach()}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.network_sma.eval()
        return self.network_sma(x)

    def after_validation(self, loss: float) -> None:
        """The plateau schedule's step on an epoch's validation loss (once the linear probe is over)."""
        if int(self.global_iter) <= int(self.hparams["linear_steps"]):
            return
        if loss < float(self.plateau_best) * (1 - THRESHOLD):
            self.plateau_best.fill_(loss)
            self.plateau_bad.zero_()
        else:
            self.plateau_bad += 1
        if int(self.plateau_bad) > PATIENCE:
            self.plateau_bad.zero_()
            for group in self.optimizer.param_groups:
                old = group["lr"]
                new = max(old * FACTOR, 0.0)
                if old - new > 1e-8:
                    group["lr"] = new
            self.plateau_changes += 1
            if int(self.plateau_changes) == LAST_CHANGE:
                for group in self.optimizer.param_groups:
                    group["lr"] = 0.0

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": self.optimizer, "linear": self.linear_optimizer}


__all__ = ["ERMPlusPlus", "ERMPP_HPARAMS", "LARS"]
