"""A sampled epoch on the parameters' own device: determinism, host syncs, history stores and checkpoints.

CPU tests run everywhere; the CUDA variants run where a GPU is present.
"""

from __future__ import annotations

import io
import warnings
from types import SimpleNamespace

import pytest
import torch
from gradsamp.host_syncs import HostSyncs
from torch import nn

from dagrad.gradsamp import GradSamp, History, ggd, resolve_settings
from dagrad.gradsamp.ggd import fit_beta, fit_betas
from dagrad.gradsamp.history import layout_for
from dagrad.gradsamp.samplers import Moments

SAMPLERS = ["tensor", "element", "ggd", "extrapolate", "skip", "shrink", "ema"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Net(nn.Module):
    """Convolutions, BatchNorm buffers, a frozen parameter and a float64 head: two (device, dtype) groups."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
        self.head = nn.Linear(4, 3).double()
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean((2, 3)).double()).float()


def cfg(**overrides):
    """The settings a run resolves for these GradSamp switches."""
    base = dict(sampler="tensor", schedule="periodic", buffers="keep",
                optimizer_state="keep", guard=False, history_device="device")
    return resolve_settings(SimpleNamespace(**{**base, **overrides}))


def nudge(model: nn.Module, seed: int) -> None:
    """A stand-in for a trained epoch: every float tensor moves by a seeded random amount."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.add_(0.01 * torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device)).abs_()


def prepared(device: str = "cpu", **overrides) -> tuple[GradSamp, nn.Module]:
    torch.manual_seed(0)
    model = Net().to(device)
    gs = GradSamp(cfg(**overrides), run_seed=11)
    for epoch in range(2):
        nudge(model, epoch)
        gs.observe(model, "train")
    return gs, model


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_bitwise(a: dict, b: dict) -> None:
    """Same tensors, bit for bit (so -0.0 vs 0.0 or two NaN payloads would differ)."""
    assert a.keys() == b.keys()
    for k in a:
        bits = [t.reshape(-1).contiguous().view(torch.uint8) for t in (a[k], b[k])]
        assert a[k].dtype == b[k].dtype and torch.equal(*bits), k


def run_twice(device: str, sampler: str, store_b: str = "device") -> tuple[dict, dict]:
    out = []
    for store in ("device", store_b):
        gs, model = prepared(device, sampler=sampler, history_device=store, buffers="extrapolate")
        kind = "skipped" if sampler == "skip" else "sampled"
        assert gs.sample(model, {}, epoch=2).kind == kind
        gs.observe(model, kind)
        nudge(model, 7)
        gs.observe(model, "train")
        assert gs.sample(model, {}, epoch=4).kind == kind
        out.append(params(model))
    return out[0], out[1]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_theta_bitwise_and_history_store_does_not_matter(sampler):
    a, b = run_twice("cpu", sampler, store_b="cpu")
    assert_bitwise(a, b)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_one_sampled_epoch_costs_at_most_two_host_syncs(sampler):
    gs, model = prepared(sampler=sampler, buffers="extrapolate", optimizer_state="reset")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with HostSyncs().counting() as syncs:
        out = gs.sample(model, {"main": opt}, epoch=2)
        gs.observe(model, out.kind)
    assert out.kind == ("skipped" if sampler == "skip" else "sampled")
    assert syncs.total <= 2, syncs.kinds
    assert syncs.kinds == {"Tensor.tolist": 1}  # in fact one: finiteness and statistics read back together
    with HostSyncs().counting() as syncs:
        gs.observe(model, "train")  # the snapshot every real epoch pays for
    assert syncs.total == 0, syncs.kinds


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
def test_the_counter_sees_what_it_should(device):
    t = torch.arange(4.0, device=device)
    with HostSyncs().counting() as syncs:
        float(t.sum()), bool(t[0]), t.tolist(), t.nonzero(), t[t > 1], torch.repeat_interleave(t, t.long())
        torch.repeat_interleave(t, t.long(), output_size=6), t.to("cpu", non_blocking=True)
    assert syncs.total == 6, syncs.kinds  # the last two do not wait
    if device == "cuda":
        with HostSyncs().counting() as syncs:
            t.cpu()
        assert syncs.kinds == {"blocking copy to host": 1}


def test_rejected_draw_writes_nothing_and_names_the_first_bad_tensor():
    gs, model = prepared(buffers="extrapolate", history_device="cpu")
    gs.history.prev.buffers["conv.1.running_mean"][3] = float("nan")
    before = params(model)
    out = gs.sample(model, {}, epoch=2)
    assert (out.kind, out.fallback) == ("rejected", "train") and "conv.1.running_mean" in out.stats["reason"]
    assert_bitwise(before, params(model))
    gs.history.prev.params["conv.3.weight"][0, 0, 0, 0] = float("inf")  # a parameter comes first
    out = gs.sample(model, {}, epoch=2)
    assert "conv.3.weight" in out.stats["reason"]
    assert_bitwise(before, params(model))


def test_history_rotation_keeps_both_states_exactly_and_reuses_the_stores():
    model, h = Net(), History()
    states = []
    for seed in range(3):
        nudge(model, seed)
        h.push(model)
        states.append(params(model))
    older_store = h.prev2.parts["params"][0].flat.data_ptr()
    nudge(model, 3)
    h.push(model)
    states.append(params(model))
    assert h.prev.parts["params"][0].flat.data_ptr() == older_store  # theta_{t-2}'s store became theta_{t-1}'s
    for snap, state in ((h.prev, states[-1]), (h.prev2, states[-2])):
        for name, value in {**snap.params, **snap.buffers}.items():
            assert torch.equal(value, state[name]), name
    ptrs = {p.flat.data_ptr() for s in (h.prev, h.prev2) for p in s.parts["params"]}
    nudge(model, 4)
    h.push(model)  # the older store is overwritten: no new allocation
    assert {p.flat.data_ptr() for s in (h.prev, h.prev2) for p in s.parts["params"]} == ptrs
    assert all(torch.equal(v, states[-1][n]) for n, v in h.prev2.params.items())


def test_cpu_history_is_pinned_only_where_cuda_exists():
    model, h = Net(), History("cpu")
    h.push(model)
    for part in h.prev.parts["params"] + h.prev.parts["buffers"]:
        assert part.flat.device.type == "cpu" and part.flat.is_pinned() == torch.cuda.is_available()
    with pytest.raises(ValueError, match="store must be one of device, cpu"):
        History("disk")


def test_state_dict_is_cpu_and_plain_and_loads_with_weights_only():
    gs, model = prepared(sampler="ggd")
    buf = io.BytesIO()
    torch.save(gs.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["version"] == 2
    twin = GradSamp(cfg(sampler="ggd"), run_seed=11)
    twin.load_state_dict(state, module=model)
    twin_model = Net()
    twin_model.load_state_dict(model.state_dict())
    gs.sample(model, {}, epoch=2)
    twin.sample(twin_model, {}, epoch=2)
    assert_bitwise(params(model), params(twin_model))
    v1 = {**state, "version": 1}  # a version-1 checkpoint (CPU tensors by name) still loads
    GradSamp(cfg(sampler="ggd"), run_seed=11).load_state_dict(v1)


def test_stats_name_the_drawing_device_and_are_finite_numbers():
    gs, model = prepared(sampler="ggd")
    stats = gs.sample(model, {}, epoch=2).stats
    assert stats["device"] == "cpu" and stats["tensors"] == 8
    assert all(isinstance(stats[k], float) for k in ("mean_abs_step", "step_norm", "delta_norm", "mean_beta"))


def test_gamma_leftovers_are_finished_exactly_by_a_second_draw_from_the_same_seed(monkeypatch):
    monkeypatch.setattr(ggd, "GAMMA_ROUNDS", 0)  # leave ~5% of the gamma variates unfinished after round one
    gs, model = prepared(sampler="ggd")
    twin, twin_model = prepared(sampler="ggd")
    with HostSyncs().counting() as syncs:
        out = gs.sample(model, {}, epoch=2)
    assert out.kind == "sampled" and syncs.kinds["Tensor.tolist"] == 2  # the read, then the re-read
    generator = torch.Generator().manual_seed(twin.draw_seed(2))
    for layout, _, delta in twin.history.delta_parts("params"):  # float32 group, then float64: one stream
        step, fit = twin.sampler.draw_flat(delta, layout, generator, finish=True)
        assert int(fit["leftover"]) == 0
        theta = dict(twin_model.named_parameters())
        expected = layout.flatten([theta[n] for n in layout.names]) + step
        assert torch.equal(layout.flatten([dict(model.named_parameters())[n] for n in layout.names]), expected)


@pytest.mark.parametrize("numels", [[3, 0, 2], [0, 0, 4, 1], [5], [2, 3, 0], [0, 0]])
def test_layout_expand_repeats_per_tensor_values_even_around_empty_tensors(numels):
    layout = layout_for(tuple(f"t{i}" for i in range(len(numels))), tuple(torch.Size([n]) for n in numels),
                        torch.float32)
    values = torch.arange(len(numels), dtype=torch.float32) + 10
    expected = torch.repeat_interleave(values, torch.tensor(numels))
    assert torch.equal(layout.expand(values), expected)
    assert torch.equal(layout.expand(torch.stack([values, -values], 1)), torch.stack([expected, -expected], 1))
    assert torch.equal(layout.affine_(torch.ones(sum(numels)), values, -values), torch.zeros(sum(numels)))


def test_vectorised_moments_and_beta_fit_match_each_tensor_alone():
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(5000, generator=g), torch.empty(4000).exponential_(generator=g) - 1.0,
               torch.rand(3000, generator=g), torch.full((7,), 0.7), torch.tensor([0.25])]
    layout = layout_for(tuple("abcde"), tuple(t.shape for t in tensors), torch.float32)
    flat = layout.flatten(tensors)
    m = Moments(flat, layout)
    mu, sigma = m.mean, m.std
    betas = fit_betas(m.centred_abs_mean(), sigma.square(), m.count)
    for i, t in enumerate(tensors):
        t64 = t.double()
        assert mu[i].item() == pytest.approx(t64.mean().item(), abs=1e-12)
        assert sigma[i].item() == pytest.approx(t64.std(correction=0).item(), rel=1e-5, abs=1e-12)
        assert betas[i].item() == pytest.approx(fit_beta(t), rel=1e-5)
    assert mu[3].item() == torch.tensor(0.7).item() and sigma[3].item() == 0.0 and betas[3].item() == 2.0


# ---- CUDA -----------------------------------------------------------------------------------------

@cuda
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cuda_same_seed_same_theta_and_cpu_history_matches_device_history(sampler):
    a, b = run_twice("cuda", sampler, store_b="cpu")
    assert_bitwise(a, b)
    c, _ = run_twice("cuda", sampler)
    assert_bitwise(a, c)


@cuda
@pytest.mark.parametrize("store", ["device", "cpu"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cuda_sampled_epoch_syncs_at_most_twice(sampler, store):
    gs, model = prepared("cuda", sampler=sampler, history_device=store, buffers="extrapolate")
    gs.sample(model, {}, epoch=2)  # warm-up: per-device layout counts are uploaded once
    gs.observe(model, "sampled")
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught, HostSyncs().counting() as syncs:
            warnings.simplefilter("always")
            out = gs.sample(model, {}, epoch=3)
            gs.observe(model, out.kind)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    cuda_syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert out.kind == "sampled" and out.stats["device"].startswith("cuda")
    assert len(cuda_syncs) <= 2, [str(w.message) for w in cuda_syncs]
    assert syncs.total <= 2, syncs.kinds
    assert len(cuda_syncs) == 1 and syncs.kinds == {"Tensor.tolist": 1}  # in fact one: the read-back


@cuda
def test_cuda_history_stays_on_the_device_and_checkpoints_hold_cpu_tensors():
    gs, model = prepared("cuda")
    assert all(p.flat.device.type == "cuda" for p in gs.history.prev.parts["params"])
    state = gs.state_dict()
    tensors = [t for s in ("prev", "prev2") for kind in ("params", "buffers") for t in state["history"][s][kind].values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    twin = GradSamp(cfg(), run_seed=11)
    twin.load_state_dict(state, module=model)
    assert all(p.flat.device.type == "cuda" for p in twin.history.prev.parts["params"])


@cuda
@pytest.mark.parametrize("sampler", ["tensor", "ggd"])
def test_cuda_draw_has_each_tensors_fitted_moments(sampler):
    g = torch.Generator(device="cuda").manual_seed(0)
    shapes = [(300, 400), (7,), (200, 500), (1,)]
    deltas = [0.1 * i + (i + 1) * 0.01 * torch.randn(s, generator=g, device="cuda") for i, s in enumerate(shapes)]
    layout = layout_for(tuple("abcd"), tuple(torch.Size(s) for s in shapes), torch.float32)
    from dagrad.gradsamp import SAMPLERS
    step, fit = SAMPLERS.build(sampler).draw_flat(layout.flatten(deltas), layout, g)
    for i, (s, d) in enumerate(zip(layout.split(step), deltas)):
        d64 = d.double()
        assert fit["mu"][i].item() == pytest.approx(d64.mean().item(), rel=1e-9, abs=1e-12)
        assert fit["sigma"][i].item() == pytest.approx(d64.std(correction=0).item(), rel=1e-6, abs=1e-12)
        if d.numel() > 1000:
            assert s.double().mean().item() == pytest.approx(d64.mean().item(), abs=5 * fit["sigma"][i].item() / 300)
            assert s.double().std().item() == pytest.approx(fit["sigma"][i].item(), rel=0.02)
        else:
            assert s.shape == (d.numel(),)
    assert torch.equal(layout.split(step)[3], deltas[3])  # one element: sigma 0, the draw is the value
