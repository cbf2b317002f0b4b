"""DomainBed's DANN: the alternating D/G schedule, which modules each step moves, resume, learning."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dagrad.algorithms import registry
from dagrad.algorithms.dann import DANN, domainbed_mlp
from dagrad.utils.errors import ConfigError


def featurizer(n_in: int = 2, n_out: int = 2) -> nn.Module:
    f = nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out))
    f.n_outputs = n_out
    return f


def make(seed: int = 0, n_in: int = 2, n_out: int = 2, **overrides) -> DANN:
    torch.manual_seed(seed)
    hparams = registry.resolve_hparams("dann", overrides, 0, small_images=True)
    return DANN(featurizer(n_in, n_out), num_classes=2, num_domains=2, hparams=hparams)


def steps(opt: torch.optim.Optimizer) -> int:
    first = opt.param_groups[0]["params"][0]
    return int(opt.state[first]["step"]) if first in opt.state else 0


TINY = [(torch.randn(2, 2), torch.tensor([0, 1])), (torch.randn(2, 2) + 1, torch.tensor([1, 0]))]



def test_5001_updates_hold_2501_generator_steps():
    model = make(mlp_width=4)
    kinds = ["G" if "gen_loss" in model.update(TINY) else "D" for _ in range(5001)]
    assert "".join(kinds[:5]) == "GDGDG"
    assert kinds.count("G") == 2501 and kinds.count("D") == 2500
    assert steps(model.gen_opt) == 2501 and steps(model.disc_opt) == 2500
    assert int(model.update_count) == 5001 and model.update_count.dtype == torch.long


def test_three_discriminator_steps_per_generator_step():
    model = make(mlp_width=4, d_steps_per_g_step=3)
    kinds = "".join("G" if "gen_loss" in model.update(TINY) else "D" for _ in range(11))
    # count % 4 < 3 -> D: counts 1, 2 are D, 3 is G, then D D D G ...
    assert kinds == "DDGDDDGDDDG"
    assert model.flops_period == 4 and make().flops_period == 2


def params_of(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_each_step_moves_only_its_own_modules():
    model = make()
    gen, disc = nn.ModuleList([model.featurizer, model.classifier]), model.discriminator
    g0, d0 = params_of(gen), params_of(disc)
    model.update(TINY)  # count 1: generator
    assert changed(g0, gen) and not changed(d0, disc)
    g1, d1 = params_of(gen), params_of(disc)
    model.update(TINY)  # count 2: discriminator
    assert not changed(g1, gen) and changed(d1, disc)
    emb = model.class_embeddings.weight
    assert any(p is emb for p in model.disc_opt.param_groups[0]["params"])
    assert model.disc_opt.param_groups[0]["betas"] == (0.5, 0.9)
    assert set(model.optimizers()) == {"disc", "gen"}


def test_state_dict_resume_keeps_the_schedule():
    a = make()
    for _ in range(3):
        a.update(TINY)
    b = make(seed=1)
    # deep copies, as a checkpoint file gives (load_state_dict would otherwise share a's Adam moments)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    b.disc_opt.load_state_dict(copy.deepcopy(a.disc_opt.state_dict()))
    b.gen_opt.load_state_dict(copy.deepcopy(a.gen_opt.state_dict()))
    ra, rb = a.update(TINY), b.update(TINY)
    assert "disc_loss" in rb and "gen_loss" not in rb  # count 4 is a discriminator step in both
    assert ra == rb
    assert torch.equal(a.discriminator[0].weight, b.discriminator[0].weight)


def domain_data(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    envs = []
    for k, shift in enumerate((-1.5, 1.5)):
        x = torch.randn(n, 4, generator=g)
        x[:, 0] += shift
        envs.append((x, torch.randint(0, 2, (n,), generator=g)))
    return envs


def test_discriminator_learns_separable_domains():
    model = make(n_in=4, n_out=8, **{"lambda": 0.0})
    envs = domain_data()
    x = torch.cat([e[0] for e in envs])
    labels = torch.cat([torch.full((len(e[0]),), i) for i, e in enumerate(envs)])

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            acc = (model.discriminator(model.featurizer(x)).argmax(1) == labels).float().mean().item()
        model.train()
        return acc

    before = accuracy()
    for _ in range(200):
        model.update(envs)
    after = accuracy()
    assert after > 0.9 and after > before + 0.2


def test_gradient_penalty_is_reported_and_bad_settings_raise():
    stats = make(grad_penalty=1.0).update(TINY)
    assert stats["grad_penalty"] > 0
    with pytest.raises(ConfigError, match="d_steps_per_g_step: 0 is out of range; allowed: an integer >= 1"):
        make(d_steps_per_g_step=0)
    with pytest.raises(ConfigError, match="mlp_depth: 1 is out of range; allowed: an integer >= 2"):
        make(mlp_depth=1)
    with pytest.raises(ValueError, match="depth >= 2"):
        domainbed_mlp(4, 2, width=8, depth=1, dropout=0.0)


def test_mlp_shape_follows_domainbed():
    mlp = domainbed_mlp(16, 3, width=8, depth=4, dropout=0.1)
    kinds = [type(m).__name__ for m in mlp]
    assert kinds == ["Linear", "Dropout", "ReLU"] * 3 + ["Linear"]
    assert mlp[0].in_features == 16 and mlp[-1].out_features == 3


def test_hyperparameters_follow_the_dataset():
    small = registry.resolve_hparams("dann", {}, 0, small_images=True)
    big = registry.resolve_hparams("dann", {}, 0, small_images=False)
    assert small["lr_d"] == small["lr_g"] == 1e-3 and big["lr_d"] == big["lr_g"] == 5e-5
    keys = ("lambda", "beta1", "mlp_width", "mlp_depth", "d_steps_per_g_step", "grad_penalty", "mlp_dropout")
    assert tuple(big[k] for k in keys) == (1.0, 0.5, 256, 3, 1, 0.0, 0.0)
    draws = [registry.resolve_hparams("dann", {}, s, small_images=False) for s in range(1, 30)]
    assert {d["mlp_depth"] for d in draws} == {3, 4, 5} and all(1 <= d["d_steps_per_g_step"] <= 7 for d in draws)
    assert {d["beta1"] for d in draws} <= {0.0, 0.5} and all(isinstance(d["mlp_width"], int) for d in draws)
    small_draws = [registry.resolve_hparams("dann", {}, s, small_images=True) for s in range(1, 5)]
    # DomainBed: the generator's weight decay is 0 on small images, the discriminator's 10^U(-6, -2) everywhere
    assert all(d["weight_decay_g"] == 0.0 and 1e-6 <= d["weight_decay_d"] <= 1e-2 for d in small_draws)
