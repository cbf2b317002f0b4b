"""Transfer (Zhang et al. 2021, "Quantifying and Improving Transferability in Domain Generalization",
Algorithm 1) as DomainBed runs it (its `update`).

Each update: (1) one step of cross-entropy over all environments; (2) one step on t_lambda * gap, where
gap = max_e CE_e - min_e CE_e of the adversarial classifier on the featurizer (each environment its own
forward pass); (3) the adversarial classifier reset to the classifier, then `d_steps_per_g` SGD steps
(lr_d) ascending the gap, each followed by the projection onto the ball of radius `delta` around the
classifier (Euclidean over all its tensors: adv <- h + delta / ||adv - h|| * (adv - h) when outside).

Which tensors steps (1) and (2) move is DomainBed's: with `gda` False, one Adam over featurizer and
classifier (step (2) moves only the featurizer, the only one of them with a gradient); with `gda` True
(every random-search draw), an SGD over the adversarial classifier only, so the featurizer and classifier
never move and the adversarial classifier's step (2) is undone by the reset. dagrad keeps that.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option


def transfer_hparams(small_images: bool) -> dict[str, Option]:
    """DomainBed's Transfer entries (lr_d's search is its small-image lr range on every dataset)."""
    return {
        "t_lambda": Option(1.0, float, "weight of the loss gap", low=0.0, search=log_uniform(-2, 1)),
        "delta": Option(2.0, float, "radius of the adversarial classifier's ball", low=0.0, low_open=True,
                        search=lambda r: float(r.uniform(0.1, 3.0))),
        "d_steps_per_g": Option(10, int, "adversary ascent steps per update", low=1,
                                search=lambda r: int(r.choice([1, 2, 5]))),
        "weight_decay_d": Option(0.0, float, "drawn as DomainBed draws it; its update does not read it", low=0.0,
                                 search=log_uniform(-6, -2)),
        "gda": Option(False, bool, "SGD on the adversarial classifier in steps 1-2 (the model then never moves)",
                      search=lambda r: True),
        "beta1": Option(0.5, float, "drawn as DomainBed draws it; its update does not read it", low=0.0, high=1.0,
                        high_open=True, search=lambda r: float(r.choice([0.0, 0.5]))),
        "lr_d": Option(1e-3, float, "SGD learning rate of the adversarial classifier", low=0.0, low_open=True,
                       search=log_uniform(-4.5, -2.5)),
    }


def classifier_distance(a: nn.Module, b: nn.Module) -> Tensor:
    """sqrt(sum over state tensors of ||a - b||^2)."""
    sa, sb = a.state_dict(), b.state_dict()
    total = 0.0
    for key in sa:
        total = total + torch.norm(sa[key] - sb[key]) ** 2
    return torch.sqrt(total)


@torch.no_grad()
def project_to_ball(adv: nn.Module, centre: nn.Module, delta: float) -> None:
    """Move `adv`'s parameters onto the ball of radius delta around `centre` when outside it."""
    dist = classifier_distance(adv, centre)
    if dist <= delta:
        return
    ratio = delta / dist
    for p_centre, p_adv in zip(centre.parameters(), adv.parameters()):
        p_adv.copy_(p_centre + ratio * (p_adv - p_centre))


@register("transfer", hparams=transfer_hparams,
          description="Transferability: loss gap of an adversarial classifier in a ball (Transfer)")
class Transfer(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"adv_classifier": "kept by a sampled epoch; reset to the classifier in every update before "
                                     "its ascent; saved in checkpoints"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.adv_classifier = copy.deepcopy(self.classifier)
        if self.hparams["gda"]:
            self.optimizer = torch.optim.SGD(self.adv_classifier.parameters(), lr=self.hparams["lr"])
        self.adv_opt = torch.optim.SGD(self.adv_classifier.parameters(), lr=self.hparams["lr_d"])

    def loss_gap(self, minibatches: list[Minibatch]) -> Tensor:
        """max_e CE_e - min_e CE_e of the adversarial classifier (first maximum and minimum kept on ties)."""
        high = low = None
        for x, y in minibatches:
            loss = F.cross_entropy(self.adv_classifier(self.featurizer(x)), y)
            if high is None or loss > high:
                high = loss
            if low is None or loss < low:
                low = loss
        return high - low

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        t = self.hparams["t_lambda"]
        loss = F.cross_entropy(self.predict(torch.cat([x for x, _ in minibatches])),
                               torch.cat([y for _, y in minibatches]))
        self.step(loss)
        self.step(t * self.loss_gap(minibatches))
        self.adv_classifier.load_state_dict(self.classifier.state_dict())
        for _ in range(int(self.hparams["d_steps_per_g"])):
            self.adv_opt.zero_grad()
            gap = t * self.loss_gap(minibatches)
            (-gap).backward()
            self.adv_opt.step()
            project_to_ball(self.adv_classifier, self.classifier, self.hparams["delta"])
        return {"loss": loss.detach(), "gap": gap.detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": self.optimizer, "adversary": self.adv_opt}


__all__ = ["Transfer", "transfer_hparams", "classifier_distance", "project_to_ball"]
