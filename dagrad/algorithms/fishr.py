"""Fishr (Rame et al. 2022, "Fishr: Invariant Gradient Variances for Out-of-Distribution Generalization")
as DomainBed runs it. Needs `backpack-for-pytorch` (the `fishr` extra) for per-example gradients.

One forward pass over all environments. The per-example gradients of the summed cross-entropy with
respect to the linear classifier's weight and bias (kept in the graph, so the penalty trains the
featurizer) give, per environment, their variance over the environment's examples (mean of squared
deviations from the mean). Each environment's variances pass through an exponential moving average
v <- ema * v + (1 - ema) * var (v starts at 0; the stored average is detached; the value used is
v / (1 - ema)). The penalty is mean_e || v_e - mean_e' v_e' ||^2 / P (mean over the P classifier entries,
bias before weight), and the loss mean CE + w * penalty with w = 0 until `penalty_anneal_iters` updates are
done, then `lambda`; on the update where the count equals it (and it is not 0) the Adam state is cleared.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.registry import log_uniform, register
from dagrad.utils.errors import ConfigError
from dagrad.registry import Option

MISSING = ("algorithm fishr needs the package backpack-for-pytorch; install it with "
           "pip install 'dagrad[fishr]' (or pip install backpack-for-pytorch)")

FISHR_HPARAMS = {
    "lambda": Option(1000.0, float, "penalty weight after the warm-up", low=0.0, search=log_uniform(1.0, 4.0)),
    "penalty_anneal_iters": Option(1500, int, "updates without the penalty (then Adam restarts)", low=0,
                                   search=lambda r: int(r.uniform(0.0, 5000.0))),
    "ema": Option(0.95, float, "moving-average factor of the gradient variances", low=0.0, high=1.0, high_open=True,
                  search=lambda r: float(r.uniform(0.90, 0.99))),
}


def _backpack():
    try:
        import backpack
        from backpack.extensions import BatchGrad
    except ImportError:
        raise ConfigError(MISSING) from None
    return backpack, BatchGrad


def gradient_variances(grads: dict[str, Tensor], sizes: list[int]) -> list[dict[str, Tensor]]:
    """Per environment (consecutive rows of `sizes`), each tensor's per-entry variance over the examples."""
    out: list[dict[str, Tensor]] = [{} for _ in sizes]
    for name, g in grads.items():
        start = 0
        for env, size in enumerate(sizes):
            rows = g[start:start + size]
            start += size
            out[env][name] = (rows - rows.mean(dim=0, keepdim=True)).pow(2).mean(dim=0)
    return out


def variance_distance(variances: list[dict[str, Tensor]]) -> Tensor:
    """mean_e of the mean squared difference between environment e's variances and their mean over
    environments, all tensors flattened in sorted-name order."""
    names = sorted(variances[0])
    mean = {n: torch.stack([v[n] for v in variances], dim=0).mean(dim=0) for n in variances[0]}
    penalty = 0.0
    for v in variances:
        penalty = penalty + (torch.cat([v[n].view(-1) for n in names])
                             - torch.cat([mean[n].view(-1) for n in names])).pow(2).mean()
    return penalty / len(variances)


@register("fishr", hparams=FISHR_HPARAMS,
          description="Invariant gradient variances across environments (Fishr; needs backpack-for-pytorch)")
class Fishr(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"update_count": COUNTER_RULE,
                   "ema_*": "kept: the moving averages of the gradient variances, buffers saved in checkpoints "
                            "(averaged over ranks at each epoch's end)"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        backpack, self._batch_grad = _backpack()
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self._backpack = backpack.backpack
        backpack.extend(self.classifier)
        self.per_example_ce = backpack.extend(nn.CrossEntropyLoss(reduction="none"))
        for env in range(num_domains):
            for name, p in self.classifier.named_parameters():
                self.register_buffer(f"ema_{env}_{name}", torch.zeros(1, p.numel()))
        add_update_count(self)

    def _per_example_grads(self, features: Tensor, logits: Tensor, y: Tensor) -> dict[str, Tensor]:
        self.optimizer.zero_grad()
        loss = self.per_example_ce(logits, y).sum()
        # the features are an input too: BackPACK's hooks on the classifier fire only when the gradient
        # reaches the classifier's input (DomainBed passes the parameters alone, which current torch skips)
        inputs = [*self.classifier.parameters(), *([features] if features.requires_grad else [])]
        with self._backpack(self._batch_grad()), warnings.catch_warnings():
            # the parameters' graph-holding .grad fields are reset by the step's zero_grad
            warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
            loss.backward(inputs=inputs, retain_graph=True, create_graph=True)
        features.grad = None
        return {name: p.grad_batch.clone().view(p.grad_batch.size(0), -1)
                for name, p in self.classifier.named_parameters()}

    def _moving_averages(self, variances: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
        ema = self.hparams["ema"]
        out = []
        for env, v in enumerate(variances):
            corrected = {}
            for name, data in v.items():
                buffer = getattr(self, f"ema_{env}_{name}")
                averaged = ema * buffer + (1 - ema) * data.view(1, -1)
                corrected[name] = averaged / (1 - ema)
                buffer.copy_(averaged.detach())
            out.append(corrected)
        return out

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        y = torch.cat([y for _, y in minibatches])
        features = self.featurizer(torch.cat([x for x, _ in minibatches]))
        logits = self.classifier(features)
        grads = self._per_example_grads(features, logits, y)
        penalty = variance_distance(self._moving_averages(gradient_variances(grads, [len(x) for x, _ in minibatches])))
        nll = F.cross_entropy(logits, y)
        anneal = int(self.hparams["penalty_anneal_iters"])
        weight = self.hparams["lambda"] if self.updates_done >= anneal else 0
        if self.updates_done == anneal != 0:
            self.optimizer.state.clear()
        loss = nll + weight * penalty
        self.step(loss)
        count_update(self)
        return {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


__all__ = ["Fishr", "FISHR_HPARAMS", "MISSING", "gradient_variances", "variance_distance"]
