"""dagrad's own readings, `shrink` and `ema`: their statistics on large tensors with known step histories,
their state through a checkpoint, and an interrupted training run that resumes to the uninterrupted result."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.utils.errors import CheckpointError, ConfigError
from dagrad.gradsamp import SAMPLERS, History
from dagrad.gradsamp.gradsamp import GradSamp
from dagrad.records.files import read_records, split_run

N = 200_000
TRAINED, SAMPLED = EpochOutcome(EpochKind.TRAIN), EpochOutcome(EpochKind.SAMPLED)


def build_sampler(name, **options):
    """The sampler through its registry entry, its options checked (the one way a sampler is built)."""
    return SAMPLERS.build(name, options)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Two(nn.Module):
    """Two large parameter tensors, so per-tensor statistics are sharp."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(N))
        self.b = nn.Parameter(torch.zeros(400, 500))


def walk(sampler, steps: list[dict[str, torch.Tensor]], outcomes=None) -> tuple[History, Two]:
    """Push theta_0 and then theta_k = theta_{k-1} + steps[k] into a History, letting `sampler` observe."""
    model, history = Two(), History()
    history.push(model)
    sampler.observe(history, TRAINED)  # one state only: nothing to fold yet
    for k, step in enumerate(steps):
        with torch.no_grad():
            model.a.add_(step["a"])
            model.b.add_(step["b"].reshape(400, 500))
        outcome = (outcomes or [TRAINED] * len(steps))[k]
        history.push(model, outcome)
        sampler.observe(history, outcome)
    return history, model


def noise(seed: int, scale_a: float, scale_b: float, mean: float = 0.0) -> dict[str, torch.Tensor]:
    g = gen(seed)
    return {"a": mean + scale_a * torch.randn(N, generator=g), "b": mean + scale_b * torch.randn(N, generator=g)}


def draw(sampler, history: History, seed: int = 1):
    ((layout, _, delta),) = history.delta_parts("params")
    step, fit = sampler.draw_flat(delta, layout, gen(seed))
    return layout, delta, step, fit


def test_shrink_damps_each_tensors_spread_by_the_ratio_of_its_last_two_steps():
    sampler = build_sampler("shrink", c=0.5)
    # a's last step is a quarter of the one before (settling); b's grew (clipped: rho = 1, element's draw)
    history, _ = walk(sampler, [noise(1, 4.0, 1.0), noise(2, 1.0, 3.0)])
    layout, delta, step, fit = draw(sampler, history)
    rho = fit["rho"].tolist()
    assert layout.names == ("a", "b")
    assert rho[0] == pytest.approx(0.25, rel=0.01) and rho[1] == 1.0
    residual = [(s - d) / (0.5 * d.abs()) for s, d in zip(layout.split(step.double()), layout.split(delta.double()))]
    assert abs(residual[0].std().item() - 0.25) < 0.01 and abs(residual[1].std().item() - 1.0) < 0.01
    assert abs(residual[0].mean().item()) < 0.005 and abs(residual[1].mean().item()) < 0.01
    mean_abs = [d.double().abs().mean().item() for d in layout.split(delta)]
    assert fit["sigma"].tolist() == pytest.approx([0.5 * rho[0] * mean_abs[0], 0.5 * mean_abs[1]], rel=1e-9)


def test_shrink_uses_trained_steps_only_and_is_element_without_a_step_before():
    sampler = build_sampler("shrink")
    history, _ = walk(sampler, [noise(1, 1.0, 1.0)])
    assert sampler.rho(history.delta_parts("params")[0][0], torch.device("cpu")).tolist() == [1.0, 1.0]
    _, delta, step, _ = draw(sampler, history, seed=4)
    element = build_sampler("element").draw_flat(delta, history.delta_parts("params")[0][0], gen(4))[0]
    assert torch.allclose(step, element, rtol=1e-6, atol=1e-7)  # same generator, same draw up to rounding
    # a sampled epoch's step (the draw itself) is not folded in: rho compares the two trained steps
    sampler = build_sampler("shrink")
    history, _ = walk(sampler, [noise(1, 2.0, 2.0), noise(2, 100.0, 100.0), noise(3, 1.0, 1.0)],
                      [TRAINED, SAMPLED, TRAINED])
    assert sampler.rho(history.delta_parts("params")[0][0], torch.device("cpu")).tolist() == \
        pytest.approx([0.5, 0.5], rel=0.01)


def test_ema_mean_is_the_bias_corrected_average_of_trained_steps_and_spread_its_noise():
    decay, c = 0.6, 1.5
    sampler = build_sampler("ema", decay=decay, c=c)
    steps = [noise(k, 0.5, 0.2, mean=0.1 * k) for k in range(1, 5)]
    history, _ = walk(sampler, steps)
    layout, delta, step, fit = draw(sampler, history, seed=9)
    weights = [(1 - decay) * decay ** (3 - k) for k in range(4)]
    expected = sum(w * torch.cat([s["a"], s["b"]]).double() for w, s in zip(weights, steps)) / sum(weights)
    trend = sampler.trend(delta, layout)
    assert torch.allclose(trend.double(), expected, rtol=1e-5, atol=1e-6)
    rms = [((d.double() - t.double()) ** 2).mean().sqrt().item()
           for d, t in zip(layout.split(delta), layout.split(trend))]
    assert fit["sigma"].tolist() == pytest.approx([c * r for r in rms], rel=1e-6)
    assert fit["mu"].tolist() == pytest.approx([t.double().mean().item() for t in layout.split(trend)], rel=1e-6)
    for s, t, sigma in zip(layout.split(step.double()), layout.split(trend.double()), fit["sigma"].tolist()):
        z = (s - t) / sigma  # standard normal around the trend
        assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01


def test_ema_with_decay_zero_or_one_trained_step_is_extrapolation():
    for sampler, steps in ((build_sampler("ema", decay=0.0), 3), (build_sampler("ema", decay=0.9), 1)):
        history, _ = walk(sampler, [noise(k, 1.0, 2.0) for k in range(1, steps + 1)])
        _, delta, step, fit = draw(sampler, history)
        assert torch.allclose(step, delta, rtol=1e-6, atol=0) and fit["sigma"].abs().max().item() < 1e-6
    assert torch.equal(build_sampler("ema").draw(torch.ones(5), gen()), torch.ones(5))  # no history at all


def test_variants_draw_in_float32_for_bfloat16_parameters_and_keep_the_dtype():
    delta = torch.randn(1000, generator=gen(3)).to(torch.bfloat16)
    for name in ("shrink", "ema"):
        step = build_sampler(name).draw(delta, gen(5))
        assert step.dtype == torch.bfloat16 and torch.isfinite(step.float()).all()


def test_options_are_checked():
    with pytest.raises(ConfigError, match="decay: 1.0 is out of range"):
        build_sampler("ema", decay=1.0)
    with pytest.raises(ConfigError, match="c: -0.5 is out of range"):
        build_sampler("shrink", c=-0.5)


def cfg(sampler: str, **options):
    from types import SimpleNamespace

    from dagrad.gradsamp import resolve_settings

    return resolve_settings(SimpleNamespace(sampler=sampler, sampler_options=options, schedule="periodic",
                                            schedule_options={"start": 2, "every": 2}, buffers="keep",
                                            optimizer_state="keep", guard=False, history_device="device"))


@pytest.mark.parametrize("name", ["shrink", "ema"])
def test_state_survives_a_checkpoint_exactly_and_a_missing_state_is_refused(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    settings = cfg(name, decay=0.7) if name == "ema" else cfg(name)
    gs = GradSamp(settings, run_seed=5)
    for k in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen(k)) * 0.1 / (k + 1))
        gs.observe(model, "train")
    buf = io.BytesIO()
    torch.save(gs.state_dict(), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    twin_model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    twin_model.load_state_dict(model.state_dict())
    twin = GradSamp(settings, run_seed=5)
    twin.load_state_dict(saved, twin_model)
    torch.manual_seed(123)
    a, b = gs.sample(model, {}, epoch=4), twin.sample(twin_model, {}, epoch=4)
    assert a.kind == b.kind == "sampled" and a.stats == b.stats
    for p, q in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(p, q)
    if name == "shrink":
        assert 0 < a.stats["mean_rho"] < 1  # the steps shrank: 1/(k+1)
    without = {k: v for k, v in saved.items() if k != "sampler_state"}
    with pytest.raises(CheckpointError, match=f"no state of the '{name}' sampler"):
        GradSamp(cfg(name), run_seed=5).load_state_dict(without)


@pytest.mark.parametrize("name", ["shrink", "ema"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tiny_config, tmp_path, monkeypatch, name):
    from dagrad.run.engine import Trainer
    from dagrad.run.training import train_run

    overrides = ["epochs=7", f"gradsamp.sampler={name}", "gradsamp.schedule=periodic",
                 "gradsamp.schedule_options={start: 2, every: 2}"]
    train_run(tiny_config(*overrides), tmp_path / "full", progress=False)
    original = Trainer._checkpoint

    def crash_after_epoch_4(self, next_epoch):
        original(self, next_epoch)
        if next_epoch == 5:
            raise KeyboardInterrupt  # the process dies after epoch 4's checkpoint, ahead of the draw at 6

    monkeypatch.setattr(Trainer, "_checkpoint", crash_after_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config(*overrides), tmp_path / "cut", progress=False)
    monkeypatch.setattr(Trainer, "_checkpoint", original)
    train_run(tiny_config(*overrides), tmp_path / "cut", resume=True, progress=False)
    keys = ("epoch", "kind", "metrics", "sampler_stats", "updates")
    runs = [split_run(read_records(tmp_path / d / "records.jsonl"))[1] for d in ("full", "cut")]
    assert [r["kind"] for r in runs[0]].count("sampled") == 3
    assert [{k: r[k] for k in keys} for r in runs[1]] == [{k: r[k] for k in keys} for r in runs[0]]
    assert all(math.isfinite(r["sampler_stats"]["step_norm"]) for r in runs[0] if r["kind"] == "sampled")
