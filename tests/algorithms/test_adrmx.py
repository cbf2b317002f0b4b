"""ADRMX: the weighted supervised contrastive loss from its definition, DomainBed's remix positions, the
D/G alternation, the domain featurizer's initialisation, DomainBed's draws."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.adrmx import supcon_lambda

FEATS = torch.tensor([[1.0, 0.2], [0.5, 0.9], [-0.3, 1.0], [0.8, -0.6], [0.1, 0.4]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1, 0, 1])
DOMAINS = torch.tensor([0, 1, 0, 0, 1])


def _by_loops(lam: float = 0.5, t: float = 0.07) -> float:
    f = [(r / r.norm()).tolist() for r in FEATS]
    n, total, skipped = len(f), 0.0, 0
    for i in range(n):
        def term(j):
            w = lam if DOMAINS[j] == DOMAINS[i] else 1 - lam
            return w * math.exp(sum(a * b for a, b in zip(f[i], f[j])) / t)
        pos = [j for j in range(n) if j != i and LABELS[j] == LABELS[i]]
        denominator = sum(term(j) for j in range(n) if j != i) + 1e-5
        if not pos:
            skipped += 1  # 0/0: NaN, skipped
            continue
        total -= sum(math.log(term(j) / denominator + 1e-5) for j in pos) / len(pos)
    return total / (n - skipped + 1)


def test_supcon_lambda_equals_its_definition():
    assert supcon_lambda(FEATS, LABELS, DOMAINS).item() == pytest.approx(_by_loops(), rel=1e-10)


def _setup(**overrides):
    hp = resolve_hparams("adrmx", {"mlp_depth": 3, "mlp_width": 16, **overrides}, 0, small_images=True)
    torch.manual_seed(0)
    algo = build("adrmx", hp, featurizer(n_out=8), 3, 2)
    g = torch.Generator().manual_seed(10)
    return algo, [(torch.randn(4, 6, generator=g), torch.tensor([0, 1, 1, 2])) for _ in range(2)]


def test_domain_featurizer_is_re_initialised_and_predictions_use_the_label_branch():
    algo, batches = _setup()
    assert not torch.equal(algo.featurizer[1].weight, algo.featurizer_domain[1].weight)
    x = batches[0][0]
    assert torch.equal(algo.predict(x), algo.classifier(algo.featurizer(x)))


def test_updates_alternate_two_discriminator_steps_and_one_generator_step():
    algo, batches = _setup()
    kinds = []
    for _ in range(6):
        before = copy.deepcopy(algo.featurizer.state_dict())
        stats = algo.update(batches)
        moved = any(not torch.equal(before[k], v) for k, v in algo.featurizer.state_dict().items())
        kinds.append(("gen" if "gen_loss" in stats else "disc", moved))
    assert kinds == [("disc", False), ("gen", True), ("disc", False), ("disc", False), ("gen", True), ("disc", False)]
    assert int(algo.update_count) == 6


def test_remix_uses_the_permutation_as_batch_positions():
    algo, batches = _setup()
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        z_l, z_d = algo.featurizer(x), algo.featurizer_domain(x)
        z = z_l - z_d
        torch.manual_seed(4)
        got = algo._remix(z, z_d, y).item()
        torch.manual_seed(4)
        expected = 0.0
        for c in range(3):  # class counts 2, 4, 2: a permutation of each count, its first two as positions
            a, b = torch.randperm(int((y == c).sum()))[:2]
            expected += F.cross_entropy(algo.classifier(z[a] + z_d[b]).view(1, -1), y[a].view(-1)).item()
    assert got == pytest.approx(expected / 3, rel=1e-6)


def test_draws_equal_domainbeds():
    fixed = {"cnt_lambda": 1.0, "dclf_lambda": 1.0, "disc_lambda": 0.75, "rmxd_lambda": 1.0, "d_steps_per_g_step": 2,
             "beta1": 0.5, "mlp_width": 256}
    assert_draws("adrmx", "RotatedMNIST", 0, 0, {**fixed, "mlp_depth": 9, "mlp_dropout": 0.0, "lr": 0.003})
    # DomainBed's draw of mlp_dropout is the integer 0; dagrad's is the float 0.0
    assert_draws("adrmx", "RotatedMNIST", 1, 0, {**fixed, "mlp_depth": 9, "mlp_dropout": 0.0, "lr": 0.001,
                                                  "batch_size": 372})
    assert_draws("adrmx", "PACS", 2, 1, {**fixed, "mlp_depth": 10, "lr": 3e-05, "weight_decay": 3.539788355410888e-06})
    assert_draws("adrmx", "PACS", 0, 0, {"lr": 3e-05})
