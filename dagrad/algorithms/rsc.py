"""Representation Self-Challenging (Huang et al. 2020) as DomainBed runs it.

With g the gradient of sum(logits * onehot(y)) with respect to the features: a feature is kept where g
is below its example's (1 - rsc_f_drop_factor) percentile (mask_f). Examples whose true-class
probability drops least when muted this way are below the (1 - rsc_b_drop_factor) percentile of the drop
(mask_b). The loss is CE of the classifier on features * (mask_f OR mask_b). Percentiles interpolate
linearly, as numpy's default does; they are computed on the features' device.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.registry import register
from dagrad.registry import Option


def _drop_option(doc: str) -> Option:
    return Option(1 / 3, float, doc, low=0.0, high=1.0, high_open=True, search=lambda r: float(r.uniform(0, 0.5)))


RSC_HPARAMS = {
    "rsc_f_drop_factor": _drop_option("fraction of feature activations muted per example"),
    "rsc_b_drop_factor": _drop_option("fraction of examples that stay muted"),
}


@register("rsc", hparams=RSC_HPARAMS, description="Representation self-challenging: mute the most predictive features")
class RSC(FeaturizerClassifier):
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        keep_f = 1 - self.hparams["rsc_f_drop_factor"]
        keep_b = 1 - self.hparams["rsc_b_drop_factor"]
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        onehot = F.one_hot(y, self.num_classes)
        f = self.featurizer(x)
        p = self.classifier(f)
        g = torch.autograd.grad((p * onehot).sum(), f)[0]
        mask_f = g.lt(torch.quantile(g, keep_f, dim=1, keepdim=True)).float()
        p_muted = self.classifier(f * mask_f)
        changes = (F.softmax(p, 1) * onehot).sum(1) - (F.softmax(p_muted, 1) * onehot).sum(1)
        mask_b = changes.lt(torch.quantile(changes.detach(), keep_b)).float().view(-1, 1)
        mask = torch.logical_or(mask_f, mask_b).float()
        loss = F.cross_entropy(self.classifier(f * mask), y)
        self.step(loss)
        return {"loss": loss.detach()}


__all__ = ["RSC", "RSC_HPARAMS"]
