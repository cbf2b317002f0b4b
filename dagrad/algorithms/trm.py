"""TRM (Xu & Jaakkola 2021, "Learning Representations that Support Robust Transfer of Predictors") as
DomainBed runs it.

The first `iters` updates are ERM over all environments in one forward pass. Afterwards each update:
1. normalises the transfer weights alpha row-wise (alpha starts as ones with a zero diagonal);
2. trains one linear head per environment for 30 SGD steps (lr 0.1) on the detached features
   (one summed cross-entropy, one step of every head per iteration);
3. for each environment Q with head h_Q: the weighted transfer risk P_Q = sum_{i != Q} alpha_Qi CE(h_Q, env i),
   the gradients g_Q = d CE(h_Q, env Q) / dW_Q (kept in the graph) and g_P = d P_Q / dW_Q (detached), g_P
   replaced by DomainBed's Neumann estimate of H_Q^-1 g_P (below), and the term P_Q - cos_lambda * g_P.g_Q;
   then alpha_Qi *= exp(groupdro_eta * alpha_Qi CE_i) (DomainBed exponentiates the weighted risk, and its
   backward weights CE_i by the updated alpha_Qi: the forward multiplied by a view the update changes);
4. minimises CE(all) + mean_Q of those terms with one Adam for the featurizer and one for the classifier.

The Neumann estimate: v_0 = g_P; ten times v_k = v_{k-1} - H v_{k-1} (H the Hessian of env Q's
cross-entropy in W_Q, on detached features) and h = v_k + h, stopping once max|h| > 10. DomainBed's
first `v -= Hv` is in place on the tensor h also holds, so h starts as v_1, not v_0: h = 2 v_1 + v_2 + ...;
dagrad keeps that. The heads, their SGD (no state) and alpha are kept by a sampled epoch; the heads are
trainable state saved in checkpoints, alpha a buffer.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dagrad.algorithms.base import FeaturizerClassifier, Minibatch, Stats
from dagrad.algorithms.counting import COUNTER_RULE, add_update_count, count_update
from dagrad.algorithms.registry import log_uniform, register
from dagrad.registry import Option

HEAD_STEPS, HEAD_LR, NEUMANN_TERMS, NEUMANN_LIMIT = 30, 1e-1, 10, 10.0

TRM_HPARAMS = {
    "cos_lambda": Option(1e-4, float, "weight of the gradient-alignment term", low=0.0, search=log_uniform(-5, 0)),
    "iters": Option(200, int, "ERM updates before the TRM loss", low=0, search=lambda r: int(10 ** r.uniform(0, 4))),
    "groupdro_eta": Option(1e-2, float, "step size of the transfer weights alpha", low=0.0,
                           search=log_uniform(-3, -1)),
}


def neumann_inverse_hvp(v: Tensor, head: nn.Linear, features: Tensor, y: Tensor) -> Tensor:
    """DomainBed's Neumann-series estimate of H^-1 v for the head's weight (module docstring)."""
    v = v.detach().clone()
    estimate = None
    for _ in range(NEUMANN_TERMS):
        loss = F.cross_entropy(head(features.detach()), y)
        grad = nn.utils.parameters_to_vector(autograd.grad(loss, head.weight, create_graph=True))
        hv = nn.utils.parameters_to_vector(autograd.grad(grad @ v, head.weight, create_graph=True))
        v = (v - hv).detach()
        estimate = (v + (v if estimate is None else estimate)).detach()
        if torch.max(torch.abs(estimate)) > NEUMANN_LIMIT:
            break
    return estimate


def _slices(features: Tensor, minibatches: list[Minibatch]) -> list[Tensor]:
    out, start = [], 0
    for x, _ in minibatches:
        out.append(features[start:start + len(x)])
        start += len(x)
    return out


@register("trm", hparams=TRM_HPARAMS,
          description="Transfer risk minimisation: per-environment heads and their transfer risk (TRM)")
class TRM(FeaturizerClassifier):
    sampled_modules = ("featurizer", "classifier")
    state_rules = {"update_count": COUNTER_RULE,
                   "heads": "kept: a sampled epoch draws only featurizer and classifier; saved in checkpoints",
                   "alpha": "kept: transfer weights, a buffer saved in checkpoints (averaged over ranks each epoch)"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        width = featurizer.n_outputs
        # one head more than environments, as DomainBed builds them (the last is never used)
        self.heads = nn.ModuleList(nn.Linear(width, num_classes) for _ in range(num_domains + 1))
        self.head_optimizers = [torch.optim.SGD(h.parameters(), lr=HEAD_LR) for h in self.heads]
        self.optimizer = torch.optim.Adam(self.featurizer.parameters(), lr=self.hparams["lr"],
                                          weight_decay=self.hparams["weight_decay"])
        self.optimizer_c = torch.optim.Adam(self.classifier.parameters(), lr=self.hparams["lr"],
                                            weight_decay=self.hparams["weight_decay"])
        self.register_buffer("alpha", torch.ones(num_domains, num_domains) - torch.eye(num_domains))
        add_update_count(self)

    def _train_heads(self, features: list[Tensor], ys: list[Tensor]) -> None:
        for _ in range(HEAD_STEPS):
            loss = sum(F.cross_entropy(self.heads[j](f.detach()), y) for j, (f, y) in enumerate(zip(features, ys)))
            for opt in self.head_optimizers:
                opt.zero_grad()
            loss.backward()
            for opt in self.head_optimizers:
                opt.step()

    def _transfer_terms(self, features: list[Tensor], ys: list[Tensor]) -> Tensor:
        total = 0.0
        n = len(features)
        for q in range(n):
            head = self.heads[q]
            grad_q = nn.utils.parameters_to_vector(
                autograd.grad(F.cross_entropy(head(features[q]), ys[q]), head.weight, create_graph=True))
            # a view outside autograd's version tracking: the backward of the weighted risk reads alpha after
            # its update below, as DomainBed's (which weights by a `.data` view of alpha)
            weights = self.alpha.data[q]
            risks = {i: F.cross_entropy(head(features[i]), ys[i]) * weights[i] for i in range(n) if i != q}
            transfer = sum(risks[i] if i in risks else 0.0 for i in range(n))
            grad_p = nn.utils.parameters_to_vector(autograd.grad(transfer, head.weight, create_graph=True)).detach()
            grad_p = neumann_inverse_hvp(grad_p, head, features[q], ys[q])
            total = total + transfer - self.hparams["cos_lambda"] * (grad_p @ grad_q)
            with torch.no_grad():
                for i, risk in risks.items():
                    self.alpha[q, i] *= (self.hparams["groupdro_eta"] * risk.detach()).exp()
        return total / n

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        transfer_phase = self.updates_done >= self.hparams["iters"]
        if transfer_phase:
            self.alpha /= self.alpha.sum(1, keepdim=True)
        all_y = torch.cat([y for _, y in minibatches])
        all_features = self.featurizer(torch.cat([x for x, _ in minibatches]))
        nll = F.cross_entropy(self.classifier(all_features), all_y)
        loss = nll
        if transfer_phase:
            ys = [y for _, y in minibatches]
            self._train_heads(_slices(all_features, minibatches), ys)
            # fresh slices (not torch.split): the gradients reach the features summed in DomainBed's order
            loss = nll + self._transfer_terms(_slices(all_features, minibatches), ys)
        self.optimizer_c.zero_grad()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.optimizer_c.step()
        count_update(self)
        return {"loss": loss.detach(), "nll": nll.detach(), "trm_loss": (loss - nll).detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"featurizer": self.optimizer, "classifier": self.optimizer_c,
                **{f"head_{i}": opt for i, opt in enumerate(self.head_optimizers)}}


__all__ = ["TRM", "TRM_HPARAMS", "neumann_inverse_hvp"]
