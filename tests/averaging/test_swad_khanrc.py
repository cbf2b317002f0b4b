"""SWAD under khanrc/swad's rule (the default): segment means weighed once per addition, buffers from the
convergence segment's start, the placeholder, and BatchNorm statistics recomputed by finalize."""

from __future__ import annotations

import copy

import pytest
import torch

from averaging.swad_models import Tiny, epoch, weight
from dagrad.averaging import SWAD
from dagrad.utils.errors import ConfigError
from dagrad.networks.featurizers import _FrozenBatchNormMixin

# the curve of test_loss_valley_khanrc's look-back case: start 5, threshold 1.43, added 3, 4, 5 at
# evaluation 7, then 5, 6, 7, 8, 9 at evaluations 10..14, dead at evaluation 15
LOSSES = [3.0, 2.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]


def iterates(k: int) -> list[float]:
    """Segment k's iterates: mean 10 k, but segments 3 and 5 have more iterates than the others."""
    return {3: [25.0, 35.0], 5: [40.0, 60.0, 45.0, 55.0]}.get(k, [10.0 * k])


def test_segment_means_count_once_per_addition_whatever_their_length():
    model = Tiny()
    swad = SWAD(model)
    for k, loss in enumerate(LOSSES):
        assert not swad.should_stop()
        epoch(swad, model, iterates(k), loss)
        if k == 7:  # look-back: 3, 4, 5
            assert weight(swad.averaged_module()) == pytest.approx((30 + 40 + 50) / 3)
    assert swad.should_stop()
    avg = swad.finalize()
    # (m3 + m4 + 2 m5 + m6 + m7 + m8 + m9) / 8, each m_k = 10 k; weighing iterates would give 50.0
    assert weight(avg) == pytest.approx(10 * (3 + 4 + 5 + 5 + 6 + 7 + 8 + 9) / 8)
    assert avg.bn.running_mean.item() == 40.0  # buffers at the start of segment 5 = the end of segment 4
    stats = swad.stats()
    assert stats["accepted"] == [3, 4, 5, 5, 6, 7, 8, 9] and stats["segments_averaged"] == 8
    assert stats["n_averaged"] == 2 + 1 + 4 + 4 + 1 + 1 + 1 + 1 and stats["stopped_at"] == 15
    assert stats["rule"] == "khanrc" and stats["fallback"] is None and stats["queued"] == 0


def test_the_convergence_segment_is_the_average_until_the_first_addition():
    model = Tiny()
    swad = SWAD(model)
    for k, loss in enumerate([3.0, 2.5, 2.0, 1.8, 2.0, 1.0, 1.1, 1.2]):  # start 5, look-back adds nothing
        epoch(swad, model, iterates(k), loss)
    assert swad.valley.accepted == []
    avg = swad.averaged_module()
    assert weight(avg) == pytest.approx(50.0) and avg.bn.running_mean.item() == 40.0
    for k, loss in [(8, 1.5), (9, 1.5), (10, 1.5)]:  # evaluation 10 adds 5: the copy is overwritten by it
        epoch(swad, model, iterates(k), loss)
    assert swad.valley.accepted == [5] and weight(swad.averaged_module()) == pytest.approx(50.0)
    assert swad.stats()["segments_averaged"] == 1

    lonely = SWAD(model, n_converge=1, n_tolerance=1)  # converged, nothing ever added (negative loss)
    epoch(lonely, model, [1.0, 2.0], -1.0)
    assert weight(lonely.finalize()) == pytest.approx(1.5) and lonely.stats()["fallback"] == "start_segment"


def test_a_one_draw_epoch_weighs_as_much_as_a_trained_one():
    model = Tiny()
    swad = SWAD(model)
    epoch(swad, model, [1.0, 1.0, 1.0, 1.0], 1.0)
    epoch(swad, model, [5.0], 1.0, kind="sampled")
    epoch(swad, model, [9.0], 1.0, kind="train")  # start 0; look-back Q = 0, 1, 2 adds 1, 2
    assert weight(swad.averaged_module()) == pytest.approx((5 + 9) / 2)


@pytest.mark.parametrize("cut", range(len(LOSSES) + 1))
def test_resume_at_any_evaluation_gives_the_same_average(cut):
    def drive(swad, model, ks):
        for k in ks:
            epoch(swad, model, iterates(k), LOSSES[k])

    model = Tiny()
    full = SWAD(model, early_stop=False)
    drive(full, model, range(len(LOSSES)))
    first = SWAD(model, early_stop=False)
    drive(first, model, range(cut))
    state = copy.deepcopy(first.state_dict())
    resumed = SWAD(Tiny(), early_stop=False)
    resumed.load_state_dict(state)
    drive(resumed, model, range(cut, len(LOSSES)))
    assert resumed.stats() == full.stats()
    a, b = full.finalize(), resumed.finalize()
    assert torch.equal(a.linear.weight, b.linear.weight) and torch.equal(a.bn.running_mean, b.bn.running_mean)


def batches():
    # averaged weights 2: z = 2 x + 2. step 1: z = 4, 6, 8 (mean 6, var 4); step 2: z = 2, 4 (mean 3, var 2)
    return iter([[torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0]])],
                 [torch.tensor([[0.0]]), torch.tensor([[1.0]])],
                 [torch.tensor([[99.0]]), torch.tensor([[99.0]])]])


def test_finalize_recomputes_batchnorm_statistics_for_the_averaged_weights():
    model = Tiny()
    swad = SWAD(model, n_converge=1, n_tolerance=1, update_bn_steps=2)
    epoch(swad, model, [1.0, 3.0], 1.0)
    stream = batches()
    final = swad.finalize(stream)
    assert weight(final) == pytest.approx(2.0) and not final.training
    assert final.bn.running_mean.item() == pytest.approx(4.5) and final.bn.running_var.item() == pytest.approx(3.0)
    assert next(stream)[0].item() == 99.0  # update_bn_steps = 2 batches were read
    assert swad.stats()["bn_steps"] == 2
    again = swad.finalize(batches())  # once only; the averaged model keeps the new statistics
    assert again.bn.running_mean.item() == pytest.approx(4.5) and swad.stats()["bn_steps"] == 2
    assert swad.averaged_module().bn.running_mean.item() == pytest.approx(4.5)
    assert model.bn.running_mean.item() == 3.0  # the online model is untouched

    one = SWAD(model, n_converge=1, n_tolerance=1)
    epoch(one, model, [2.0], 1.0)
    assert one.finalize(batches(), steps=1).bn.running_mean.item() == pytest.approx(6.0)
    assert one.stats()["bn_steps"] == 1


class FrozenTiny(_FrozenBatchNormMixin, Tiny):
    freeze_bn = True


def test_finalize_leaves_frozen_batchnorm_alone():
    model = FrozenTiny()
    model.set(7.0)
    swad = SWAD(model, n_converge=1, n_tolerance=1)  # its convergence segment starts with mean 7
    epoch(swad, model, [1.0, 3.0], 1.0)
    stream = batches()
    final = swad.finalize(stream)
    assert final.bn.running_mean.item() == 7.0 and swad.stats()["bn_steps"] == 0
    assert next(stream)[0][0].item() == 1.0  # nothing was read
    assert SWAD(model).finalize(batches()) is None  # no evaluation, no model


@pytest.mark.parametrize("kw, key", [({"rule": "lagged"}, "averaging.options.rule"),
                                     ({"update_bn_steps": -1}, "averaging.options.update_bn_steps"),
                                     ({"update_bn_steps": 2.5}, "averaging.options.update_bn_steps")])
def test_bad_settings_are_config_errors(kw, key):
    """Checked once, against SWAD's registry entry, before anything is built."""
    from dagrad.averaging import AVERAGERS

    with pytest.raises(ConfigError, match=key):
        AVERAGERS.resolve("swad", kw)
