"""The GradSamp orchestrator on a small model with BatchNorm buffers, a frozen parameter and Adam."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dagrad.config.schema import GradSampConfig, from_dict
from dagrad.utils.errors import ConfigError
from dagrad.gradsamp import GradSamp, Settings, resolve_settings


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(16, 3)
        self.frozen = nn.Parameter(torch.ones(5), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()


SAMPLER_KEYS = {"scale": "scale", "element_c": "c", "ggd_beta": "beta"}
SCHEDULE_KEYS = ("every", "start", "probability", "epochs")


def cfg(**given) -> Settings:
    """GradSamp settings as a run's Experiment holds them: a GradSampConfig checked by the schema (tensor
    sampler by default), then resolved; sampler and schedule options may be given flat."""
    data = {"sampler": "tensor", **given}
    data["sampler_options"] = {option: data.pop(key) for key, option in SAMPLER_KEYS.items() if key in data}
    data["schedule_options"] = {key: data.pop(key) for key in SCHEDULE_KEYS if key in data}
    return resolve_settings(from_dict(data, GradSampConfig, "gradsamp."))


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 5) -> None:
    model.train()
    x, y = data()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def prepared(**overrides):
    """A GradSamp that has observed two real epochs of a small model trained with Adam."""
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    gs = GradSamp(cfg(**overrides), run_seed=3, guard_batch=data(1))
    for _ in range(2):
        train_epoch(model, opt)
        gs.observe(model, "train")
    return gs, model, opt


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


TRAINABLE = ["body.0.bias", "body.0.weight", "body.1.bias", "body.1.weight", "head.bias", "head.weight"]


@pytest.mark.parametrize("sampler", ["tensor", "element", "ggd", "extrapolate", "skip"])
def test_all_trainable_params_change_frozen_and_buffers_do_not(sampler):
    gs, model, opt = prepared(sampler=sampler)
    assert gs.wants_sample(2) and not gs.wants_sample(3)
    before = state(model)
    out = gs.sample(model, {"main": opt}, epoch=2)
    assert out.kind == ("skipped" if sampler == "skip" else "sampled") and out.fallback is None
    after = state(model)
    for name in TRAINABLE:
        assert torch.equal(before[name], after[name]) == (sampler == "skip"), name
    for name in ["frozen", "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked"]:
        assert torch.equal(before[name], after[name]), name
    assert out.stats["tensors"] == 6 and out.stats["elements"] == sum(before[n].numel() for n in TRAINABLE)
    assert out.stats["sampler"] == sampler and out.stats["seed"] == gs.draw_seed(2)
    assert (out.stats["mean_abs_step"] == 0.0) == (sampler == "skip")
    if sampler == "ggd":
        assert 0.3 <= out.stats["min_beta"] <= out.stats["mean_beta"] <= out.stats["max_beta"] <= 8.0
    json.dumps(out.stats, allow_nan=False)


def test_extrapolate_writes_theta_plus_scaled_delta_exactly():
    gs, model, opt = prepared(sampler="extrapolate", scale=0.5)
    deltas, _ = gs.history.deltas()
    expected = {n: (p.detach().double() + 0.5 * deltas[n].double()).float() for n, p in model.named_parameters()
                if p.requires_grad}
    gs.sample(model, {"main": opt}, epoch=2)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.detach(), expected[n]), n


def test_buffers_extrapolate_adds_delta_and_keeps_variances_non_negative():
    gs, model, opt = prepared(sampler="extrapolate", buffers="extrapolate")
    _, buffer_deltas = gs.history.deltas()
    mean_before = model.body[1].running_mean.clone()
    count = model.body[1].num_batches_tracked.clone()
    out = gs.sample(model, {"main": opt}, epoch=2)
    assert out.stats["buffers_changed"] == 2
    assert torch.allclose(model.body[1].running_mean, mean_before + buffer_deltas["body.1.running_mean"])
    assert bool((model.body[1].running_var >= 0).all())
    assert torch.equal(model.body[1].num_batches_tracked, count)


@pytest.mark.parametrize("guard", [False, True])
def test_the_skip_control_changes_nothing_whatever_the_other_settings(guard):
    """The equal-energy control is a pure skip: parameters, buffers and optimizer state stay bit for bit,
    even with buffers=extrapolate, optimizer_state=reset and the guard on."""
    gs, model, opt = prepared(sampler="skip", buffers="extrapolate", optimizer_state="reset", guard=guard)
    before, moments = state(model), copy.deepcopy(opt.state_dict())
    out = gs.sample(model, {"main": opt}, epoch=2, predict=model.forward)
    assert out.kind == "skipped" and "buffers_changed" not in out.stats
    assert_same(state(model), before)
    after = opt.state_dict()
    assert after["param_groups"] == moments["param_groups"] and after["state"].keys() == moments["state"].keys()
    for k, v in moments["state"].items():
        assert all(torch.equal(v[key], after["state"][k][key]) for key in v)


def test_optimizer_state_reset_clears_adam_moments_keep_leaves_them():
    gs, model, opt = prepared(optimizer_state="reset")
    assert len(opt.state) == 6
    groups = copy.deepcopy(opt.param_groups[0]["lr"])
    gs.sample(model, {"main": opt}, epoch=2)
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == groups
    train_epoch(model, opt, steps=1)  # the optimizer still works after the reset
    gs, model, opt = prepared(optimizer_state="keep")
    gs.sample(model, {"main": opt}, epoch=2)
    assert len(opt.state) == 6


def test_non_finite_history_is_rejected_with_nothing_written():
    gs, model, opt = prepared(sampler="tensor", optimizer_state="reset", buffers="extrapolate")
    gs.history.prev.params["head.weight"][0, 0] = math.inf
    before = state(model)
    out = gs.sample(model, {"main": opt}, epoch=2)
    assert (out.kind, out.fallback) == ("rejected", "train")
    assert "head.weight" in out.stats["reason"]
    assert_same(before, state(model))
    assert len(opt.state) == 6  # not reset either
    json.dumps(out.stats, allow_nan=False)


def test_huge_scale_overflow_is_rejected():
    gs, model, opt = prepared(sampler="extrapolate", scale=1e300)
    before = state(model)
    out = gs.sample(model, {"main": opt}, epoch=2)
    assert out.kind == "rejected" and "non-finite" in out.stats["reason"]
    assert_same(before, state(model))


class FakeMeter:
    def __init__(self) -> None:
        self.names: list[str] = []

    @contextlib.contextmanager
    def window(self, name: str):
        self.names.append(name)
        yield SimpleNamespace(to_dict=lambda: {"joules": 1.5, "source": "estimated:test"})


@pytest.mark.parametrize("fallback", ["train", "keep"])
def test_guard_rejects_harmful_draw_and_restores_exactly(fallback):
    gs, model, opt = prepared(sampler="tensor", scale=1e3, guard=True, guard_fallback=fallback,
                              buffers="extrapolate", optimizer_state="reset")
    before = state(model)
    meter = FakeMeter()
    out = gs.sample(model, {"main": opt}, epoch=2, predict=model, meter=meter)
    assert (out.kind, out.fallback) == ("rejected", fallback)
    assert out.stats["guard"] == "rejected" and out.stats["guard_loss_after"] > out.stats["guard_loss_before"]
    assert out.stats["guard_energy"] == {"joules": 1.5, "source": "estimated:test"} and meter.names == ["guard"]
    assert_same(before, state(model))
    assert model.training and model.body[1].training  # modes restored
    assert len(opt.state) == 6
    json.dumps(out.stats, allow_nan=False)


def test_guard_accepts_harmless_draw_without_touching_bn_statistics():
    gs, model, opt = prepared(sampler="extrapolate", scale=1e-4, guard=True)
    before = state(model)
    out = gs.sample(model, {"main": opt}, epoch=2, predict=model)
    assert out.kind == "sampled" and out.stats["guard"] == "accepted"
    assert out.stats["guard_loss_after"] <= out.stats["guard_loss_before"] * 1.05
    after = state(model)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    for name in ["body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked"]:
        assert torch.equal(before[name], after[name]), name


def test_guard_without_predict_is_recorded_as_skipped():
    gs, model, opt = prepared(guard=True)
    out = gs.sample(model, {"main": opt}, epoch=2)
    assert out.kind == "sampled" and out.stats["guard"].startswith("skipped")


def test_draw_depends_on_seed_and_epoch_only_and_survives_state_dict_round_trip():
    gs, model, opt = prepared(sampler="ggd")
    twin_model, original = copy.deepcopy(model), copy.deepcopy(model)
    saved = copy.deepcopy(gs.state_dict())
    buf = io.BytesIO()
    torch.save(gs.state_dict(), buf)
    buf.seek(0)
    twin = GradSamp(cfg(sampler="ggd"), run_seed=3)
    twin.load_state_dict(torch.load(buf))
    assert twin.wants_sample(2)
    torch.manual_seed(999)  # the global RNG must not matter
    gs.sample(model, {}, epoch=2)
    twin.sample(twin_model, {}, epoch=2)
    assert_same(state(model), state(twin_model))
    # another epoch, or another run seed, draws differently from the same history
    def draw(run_seed: int, epoch: int) -> torch.Tensor:
        other, m = GradSamp(cfg(sampler="ggd"), run_seed=run_seed), copy.deepcopy(original)
        other.load_state_dict(saved)
        other.sample(m, {}, epoch=epoch)
        return m.head.weight.detach()

    assert torch.equal(draw(3, 2), model.head.weight)
    assert not torch.equal(draw(3, 2), draw(3, 5))
    assert not torch.equal(draw(3, 2), draw(4, 2))


def test_observe_counts_kinds_and_schedule_follows():
    gs, model, opt = prepared(sampler="skip", every=1, start=0, max_consecutive=2, guard_fallback="keep")
    assert gs.history.real_epochs == 2
    kinds = []
    for epoch in range(2, 9):
        if gs.wants_sample(epoch):
            out = gs.sample(model, {"main": opt}, epoch)
            kinds.append(out.kind)
            gs.observe(model, out.kind)
        else:
            train_epoch(model, opt, steps=1)
            kinds.append("train")
            gs.observe(model, "train")
    assert kinds == ["skipped", "skipped", "train", "skipped", "skipped", "train", "skipped"]
    gs.observe(model, "rejected", fallback="keep")
    assert gs.history.consecutive_sampled == 2 and gs.history.real_epochs == 4
    gs.observe(model, "rejected", fallback="train")
    assert gs.history.consecutive_sampled == 0 and gs.history.real_epochs == 5
    with pytest.raises(ValueError, match="fallback"):
        gs.observe(model, "rejected")
    with pytest.raises(ValueError, match="kind must be"):
        gs.observe(model, "sample")


def test_no_sampling_before_two_real_epochs():
    gs = GradSamp(cfg(every=1, start=0), run_seed=0)
    model = Net()
    assert not gs.wants_sample(0)
    gs.observe(model, "train")
    assert not gs.wants_sample(1)
    gs.observe(model, "train")
    assert gs.wants_sample(2)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"sampler": "gauss"}, "gradsamp.sampler: unknown sampler 'gauss'; choose one of: element, ema, extrapolate"),
        ({"buffers": "average"}, "gradsamp.buffers: 'average' is not allowed; choose one of: keep, extrapolate"),
        ({"optimizer_state": "zero"}, "optimizer_state"),
        ({"guard_fallback": "skip"}, "guard_fallback"),
        ({"scale": float("nan")}, "gradsamp.sampler_options.scale: expected a finite number"),
        ({"scale": -1.0}, "gradsamp.sampler_options.scale: -1.0 is out of range; allowed: a finite number >= 0"),
        ({"schedule": "cosine"}, "gradsamp.schedule: unknown schedule 'cosine'; choose one of: epochs, periodic, random"),
        ({"sampler": "ggd", "ggd_beta": -2.0}, "gradsamp.sampler_options.beta: -2.0 is out of range"),
    ],
)
def test_bad_configuration_is_one_clear_error(overrides, match):
    with pytest.raises(ConfigError, match=match):
        GradSamp(cfg(**overrides), run_seed=0)


def test_gradsamp_off_resolves_to_none():
    assert resolve_settings(GradSampConfig()) is None  # sampler: none
    assert resolve_settings(from_dict({"sampler": "none", "guard": True}, GradSampConfig, "gradsamp.")) is None


def test_builds_from_the_settings_a_config_resolves_to():
    gs = GradSamp(resolve_settings(GradSampConfig(sampler="element", schedule="random",
                                                  schedule_options={"probability": 0.5})), run_seed=4)
    assert gs.sampler.name == "element" and gs.schedule.name == "random"
