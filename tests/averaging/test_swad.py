"""SWAD's dense averaging under the paper's rule (iterate weighting), and what both rules share: early
stop, fallback, resume, construction. khanrc/swad's weighting and update_bn: test_swad_khanrc.py."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from dagrad.averaging import AVERAGERS, SWAD, Averager
from dagrad.utils.errors import ConfigError
from averaging.swad_models import Tiny, epoch, step, weight


def test_averaged_weights_are_the_arithmetic_mean_of_accepted_iterates():
    model = Tiny()
    swad = SWAD(model, rule="paper")
    assert isinstance(swad, Averager)
    epoch(swad, model, [1.0, 2.0], loss=1.0)
    epoch(swad, model, [3.0, 4.0], loss=1.1)
    assert swad.averaged_module() is None  # no valley yet
    epoch(swad, model, [5.0, 9.0], loss=1.2)  # converged: start 0, threshold 1.43, all three join
    avg = swad.averaged_module()
    expected = sum([1, 2, 3, 4, 5, 9]) / 6
    assert type(avg) is Tiny and not avg.training
    for p in avg.parameters():
        assert torch.allclose(p, torch.full_like(p, expected))
    assert avg.bn.running_mean.item() == 9.0  # buffers: from the end of the latest accepted segment
    assert avg.optimizer is None  # the copy carries no optimizer state
    assert weight(model) == 9.0  # the online model is untouched
    stats = swad.stats()
    assert stats["n_averaged"] == 6 and stats["segments_averaged"] == 3 and stats["state"] == "averaging"
    json.dumps(stats)


@pytest.mark.parametrize("rule, expected", [
    ("paper", 1.0),  # mean of iterates 0, 1, 2
    ("khanrc", 6 / 7),  # added 1, 2 (look-back), 0, 0, 0 (short queue), 1, 2: see test_loss_valley_khanrc
])
def test_valley_end_stops_training_and_freezes_the_average(rule, expected):
    model = Tiny()
    swad = SWAD(model, rule=rule)
    for k, loss in enumerate([1.0, 1.1, 1.2] + [5.0] * 5):
        epoch(swad, model, [float(k)], loss)
        assert not swad.should_stop()
    epoch(swad, model, [8.0], 5.0)  # segment 3's window 3..8 is complete and above 1.43
    assert swad.should_stop() and swad.stats()["end"] == 3
    epoch(swad, model, [100.0], 0.1)  # ignored once dead
    final = swad.finalize()
    assert weight(final) == pytest.approx(expected)
    assert SWAD(Tiny(), early_stop=False).should_stop() is False


@pytest.mark.parametrize("rule, expected", [
    ("paper", sum(range(6)) / 6),
    # added 1, 2 (look-back), 0, 0, 0 (short queue), then the flush: queue 0..5 less its head -> 1..5
    ("khanrc", (1 + 2 + 0 + 0 + 0 + 1 + 2 + 3 + 4 + 5) / 10),
])
def test_finalize_flushes_queued_segments_and_falls_back_without_a_valley(rule, expected):
    model = Tiny()
    swad = SWAD(model, rule=rule)
    for k, loss in enumerate([1.0, 1.0, 1.0, 1.0, 2.0, 1.2]):
        epoch(swad, model, [float(k)], loss)
    final = swad.finalize()
    assert weight(final) == pytest.approx(expected)
    assert swad.finalize() is not None and swad.stats()["finished"]
    with pytest.raises(RuntimeError):
        swad.after_epoch(model, 1.0, "train")

    falling = SWAD(model, rule=rule)
    for k, loss in enumerate([5.0, 4.0, 3.0, 2.0]):
        epoch(falling, model, [float(k), float(k) + 1], loss)
    assert falling.averaged_module() is None
    final = falling.finalize()
    assert weight(final) == pytest.approx(3.5) and falling.stats()["fallback"] == "last_segment"
    # buffers: khanrc's segment copy holds them from the segment's start, the paper rule from its end
    assert final.bn.running_mean.item() == (3.0 if rule == "khanrc" else 4.0)  # iterates 2, 3 | 3, 4
    assert SWAD(model, rule=rule).finalize() is None  # no evaluation at all


def test_sampled_epoch_counts_as_one_iterate():
    model = Tiny()
    swad = SWAD(model, rule="paper")
    epoch(swad, model, [1.0, 1.0, 1.0, 1.0], 1.0)
    epoch(swad, model, [5.0], 1.0, kind="sampled")  # the engine's single after_step for the draw
    model.set(9.0)
    swad.after_epoch(model, 1.0, "rejected")  # no after_step at all: the epoch-end weights count once
    assert swad.stats()["n_averaged"] == 6
    assert weight(swad.averaged_module()) == pytest.approx((4 + 5 + 9) / 6)
    with pytest.raises(ValueError, match="kind"):
        swad.after_epoch(model, 1.0, "bogus")


@pytest.mark.parametrize("rule", ["khanrc", "paper"])
def test_state_dict_round_trip_continues_identically(tmp_path, rule):
    script = [([1.0, 2.0], 2.0), ([3.0], 1.0), ([4.0, 5.0], 1.1), ([6.0], 1.2), ([7.0], 3.0),
              ([8.0], 1.0), ([9.0], 4.0), ([10.0], 4.0)]

    def drive(swad, model, items):
        for values, loss in items:
            epoch(swad, model, values, loss)

    model = Tiny()
    first = SWAD(model, rule=rule)
    drive(first, model, script[:4])
    step(first, model, 11.0)  # a half-finished segment must survive too
    torch.save(first.state_dict(), tmp_path / "swad.pt")
    model2 = Tiny()
    resumed = SWAD(model2, rule=rule)
    resumed.load_state_dict(torch.load(tmp_path / "swad.pt", weights_only=True))
    assert resumed.stats() == first.stats()
    first_final = copy.deepcopy(first)
    for s in (first_final, resumed):
        epoch(s, model2, [], 1.0)
        drive(s, model2, script[5:])
    assert resumed.stats() == first_final.stats()
    a, b = first_final.finalize(), resumed.finalize()
    assert torch.equal(a.linear.weight, b.linear.weight) and torch.equal(a.bn.running_mean, b.bn.running_mean)
    assert resumed.stats()["n_averaged"] > 0


def test_an_averager_builds_through_its_entry():
    swad = AVERAGERS.build("swad", {"tolerance_ratio": 0.2, "early_stop": False}, module=Tiny())
    assert isinstance(swad, SWAD) and swad.valley.tolerance_ratio == 0.2 and not swad.early_stop
    assert swad.valley.n_converge == 3 and swad.valley.n_tolerance == 6  # SWAD's defaults, from the registry
    assert swad.valley.rule == "khanrc" and swad.update_bn_steps == 500  # khanrc/swad's defaults
    with pytest.raises(ConfigError, match="averaging.name: unknown averager 'ema'; choose one of: swad"):
        AVERAGERS.resolve("ema")
    with pytest.raises(ConfigError, match="averaging.options.n_tolerance: 0 is out of range"):
        AVERAGERS.resolve("swad", {"n_tolerance": 0})


@pytest.mark.parametrize("rule", ["khanrc", "paper"])
def test_works_over_a_real_algorithm_with_two_optimizers(rule):
    from dagrad.algorithms import registry
    from dagrad.algorithms.dann import DANN

    torch.manual_seed(0)
    f = nn.Sequential(nn.Flatten(), nn.Linear(3, 4))
    f.n_outputs = 4
    model = DANN(f, 2, 2, registry.resolve_hparams("dann", {"mlp_width": 8}, 0, small_images=True))
    swad = SWAD(model, n_converge=1, n_tolerance=1, rule=rule)
    batches = [(torch.randn(4, 3), torch.randint(0, 2, (4,))) for _ in range(2)]
    iterates = []
    for _ in range(3):
        model.update(batches)
        swad.after_step(model)
        iterates.append(model.classifier.weight.detach().clone())
    swad.after_epoch(model, 0.5, "train")
    avg = swad.averaged_module()
    assert type(avg) is DANN and avg.disc_opt is None and avg.gen_opt is None
    assert torch.allclose(avg.classifier.weight, torch.stack(iterates).mean(0), atol=1e-7)
    # integer buffers: khanrc's from the convergence segment's start, the paper's from the latest iterate
    assert int(avg.update_count) == (0 if rule == "khanrc" else 3)
    assert avg.predict(torch.randn(5, 3)).shape == (5, 2)
    assert model.disc_opt is not None and model.training
