"""ADRMX (Demirel et al. 2023, "ADRMX: Additive Disentanglement of Domain Features with Remix Loss") as
DomainBed runs it.

Two featurizers: one for label features z_l, one for domain features z_d; z = z_l - z_d should be domain
invariant. An MLP discriminator (DomainBed's, `mlp_*`) predicts the environment from z. Updates alternate as
DANN's: update n (1-based) is a discriminator step when n mod (1 + d_steps_per_g_step) < d_steps_per_g_step
(its Adam on the discriminator's cross-entropy), else a generator step minimising
  CE(c1(z_l), y) + CE(c2(z), y) + dclf_lambda CE(cd(z_d), env) + rmxd_lambda * remix
  + cnt_lambda (SupCon_l(z_l) + SupCon_l(z)) - disc_lambda * CE(discriminator(z), env)
with one Adam over both featurizers and the three (nonlinear: width -> width/2 -> width/4 -> out)
classifiers; predictions are c1(z_l). Both Adams use betas (beta1, 0.9) and no weight decay, as DomainBed's.

SupCon_l (lambda 0.5, temperature 0.07) of L2-normalised features, for each example i with positives P_in
(same label and environment, i excluded) and P_out (same label, other environment), negatives N_in, N_out:
terms e_j = w_j exp(f_j.f_i / t) with w = 0.5 in the environment and 0.5 outside; the loss of i is
-(1/|P|) sum_{j in P} log(e_j / (sum_{j in N_in, N_out, P_in, P_out} e_j + 1e-5) + 1e-5); rows whose loss is
NaN are skipped, and the sum is divided by (batch - skipped + 1).

Remix, as DomainBed draws it: for each class, a torch.randperm over the class's count; its first two
entries are used as batch positions (not as positions among the class's examples), and
CE(c1(z[a] + z_d[b]), y[a]) is averaged over the classes. The domain featurizer starts as a copy of the
label featurizer, re-initialised (every layer's `reset_parameters`) unless it holds pretrained weights,
as DomainBed builds both from the same recipe.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dagrad.algorithms.base import Algorithm, Minibatch, Stats
from dagrad.algorithms.counting import add_update_count
from dagrad.algorithms.dann import domainbed_mlp
from dagrad.algorithms.registry import common_hparams, register
from dagrad.registry import Option


def adrmx_hparams(small_images: bool) -> dict[str, Option]:
    fixed = {name: Option(value, float, text, low=0.0, search=lambda r, v=value: float(r.choice([v])))
             for name, value, text in (("cnt_lambda", 1.0, "weight of the contrastive terms"),
                                       ("dclf_lambda", 1.0, "weight of the domain classifier's loss"),
                                       ("disc_lambda", 0.75, "weight of the (negated) discriminator loss"),
                                       ("rmxd_lambda", 1.0, "weight of the remix loss"))}
    lr = (Option(3e-3, float, "Adam learning rate", low=0.0, low_open=True,
                 search=lambda r: float(r.choice([5e-4, 1e-3, 2e-3, 3e-3])))
          if small_images else
          Option(3e-5, float, "Adam learning rate", low=0.0, low_open=True,
                 search=lambda r: float(r.choice([2e-5, 3e-5, 4e-5, 5e-5]))))
    return {**fixed,
            "d_steps_per_g_step": Option(2, int, "discriminator steps per generator step", low=1,
                                         search=lambda r: int(r.choice([2]))),
            "beta1": Option(0.5, float, "Adam beta1 of both optimizers", low=0.0, high=1.0, high_open=True,
                            search=lambda r: float(r.choice([0.5]))),
            "mlp_width": Option(256, int, "discriminator width", low=1, search=lambda r: int(r.choice([256]))),
            "mlp_depth": Option(9, int, "discriminator depth (layers)", low=2, search=lambda r: int(r.choice([8, 9, 10]))),
            "mlp_dropout": Option(0.0, float, "discriminator dropout", low=0.0, high=1.0, high_open=True,
                                  search=lambda r: float(r.choice([0]))),
            "lr": lr, "weight_decay": common_hparams(small_images)["weight_decay"]}


def nonlinear_classifier(width: int, outputs: int) -> nn.Sequential:
    """DomainBed's nonlinear classifier: width -> width/2 -> width/4 -> outputs with ReLUs."""
    return nn.Sequential(nn.Linear(width, width // 2), nn.ReLU(), nn.Linear(width // 2, width // 4), nn.ReLU(),
                         nn.Linear(width // 4, outputs))


def supcon_lambda(features: Tensor, labels: Tensor, domains: Tensor, lam: float = 0.5,
                  temperature: float = 0.07) -> Tensor:
    """The in/out-environment weighted supervised contrastive loss (module docstring)."""
    f = F.normalize(features, p=2, dim=1)
    dots = f @ f.T / temperature
    total, skipped = features.new_zeros(()), 0
    for i in range(len(features)):
        same_label, same_env = labels == labels[i], domains == domains[i]
        pos_in = same_label & same_env
        pos_in[i] = False
        pos_out, neg_in, neg_out = same_label & ~same_env, ~same_label & same_env, ~same_label & ~same_env
        col = dots[:, i]
        positives = torch.cat((lam * torch.exp(col[pos_in]), (1 - lam) * torch.exp(col[pos_out])))
        denominator = torch.sum(torch.cat((lam * torch.exp(col[neg_in]), (1 - lam) * torch.exp(col[neg_out]),
                                           positives))) + 1e-5
        row = torch.sum(torch.log(positives / denominator + 1e-5)) / (int(pos_in.sum()) + int(pos_out.sum()))
        if torch.isnan(row):
            skipped += 1
            continue
        total = total - row
    return total / (len(features) - skipped + 1)


@register("adrmx", hparams=adrmx_hparams,
          description="Additive disentanglement of domain features with a remix loss (ADRMX)")
class ADRMX(Algorithm):
    sampled_modules = ("featurizer", "featurizer_domain", "classifier", "classifier_label_2", "classifier_domain")
    state_rules = {"update_count": "kept: counts the updates actually run (the D/G alternation); saved in checkpoints",
                   "discriminator": "kept by a sampled epoch with its Adam state; saved in checkpoints"}

    def __init__(self, featurizer, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        hp = self.hparams
        width = featurizer.n_outputs
        self.featurizer = featurizer
        self.featurizer_domain = copy.deepcopy(featurizer)
        if not getattr(featurizer, "pretrained", None):
            for module in self.featurizer_domain.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        self.discriminator = domainbed_mlp(width, num_domains, int(hp["mlp_width"]), int(hp["mlp_depth"]),
                                           hp["mlp_dropout"])
        self.classifier = nonlinear_classifier(width, num_classes)
        self.classifier_label_2 = nonlinear_classifier(width, num_classes)
        self.classifier_domain = nonlinear_classifier(width, num_domains)
        self.network = nn.Sequential(self.featurizer, self.classifier)
        betas = (hp["beta1"], 0.9)
        self.disc_opt = torch.optim.Adam(self.discriminator.parameters(), lr=hp["lr"], betas=betas)
        self.opt = torch.optim.Adam([*self.featurizer.parameters(), *self.featurizer_domain.parameters(),
                                     *self.classifier.parameters(), *self.classifier_label_2.parameters(),
                                     *self.classifier_domain.parameters()], lr=hp["lr"], betas=betas)
        add_update_count(self)

    @property
    def flops_period(self) -> int:
        return 1 + int(self.hparams["d_steps_per_g_step"])

    def _remix(self, z: Tensor, z_domain: Tensor, y: Tensor) -> Tensor:
        total = 0.0
        for c in range(self.num_classes):
            perm = torch.randperm(int((y == c).sum()))
            if len(perm) < 2:
                continue
            a, b = perm[:2]
            pred = self.classifier((z[a] + z_domain[b]).view(1, -1))
            total = total + F.cross_entropy(pred.view(1, -1), y[a].view(-1))
        return total / self.num_classes

    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        self.updates_done += 1
        self.update_count.fill_(self.updates_done)
        hp = self.hparams
        x, y = torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])
        domains = torch.cat([torch.full((len(xe),), i, dtype=torch.long, device=x.device)
                             for i, (xe, _) in enumerate(minibatches)])
        z_label, z_domain = self.featurizer(x), self.featurizer_domain(x)
        z = z_label - z_domain
        disc_loss = F.cross_entropy(self.discriminator(z), domains)
        d = int(hp["d_steps_per_g_step"])
        if self.updates_done % (1 + d) < d:
            self.disc_opt.zero_grad()
            disc_loss.backward()
            self.disc_opt.step()
            return {"disc_loss": disc_loss.detach()}
        domain_loss = F.cross_entropy(self.classifier_domain(z_domain), domains)
        loss_int = F.cross_entropy(self.classifier(z_label), y)
        cnt_int = supcon_lambda(z_label, y, domains)
        loss_final = F.cross_entropy(self.classifier_label_2(z), y)
        cnt_final = supcon_lambda(z, y, domains)
        remix = self._remix(z, z_domain, y)
        gen_loss = (loss_int + loss_final + hp["dclf_lambda"] * domain_loss + hp["rmxd_lambda"] * remix
                    + hp["cnt_lambda"] * (cnt_int + cnt_final) + (hp["disc_lambda"] * -disc_loss))
        self.disc_opt.zero_grad()
        self.opt.zero_grad()
        gen_loss.backward()
        self.opt.step()
        return {"gen_loss": gen_loss.detach(), "loss": loss_int.detach(), "disc_loss": disc_loss.detach(),
                "contrastive": (cnt_int + cnt_final).detach(), "remix": torch.as_tensor(remix).detach()}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"disc": self.disc_opt, "gen": self.opt}


__all__ = ["ADRMX", "adrmx_hparams", "supcon_lambda", "nonlinear_classifier"]
