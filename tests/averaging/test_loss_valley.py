"""The paper's lagged loss-valley rule (rule="paper") on scripted loss sequences: start, threshold,
inclusion, end, flush, resume. khanrc/swad's rule, the default, is in test_loss_valley_khanrc.py."""

from __future__ import annotations

import math

import pytest

from dagrad.averaging.loss_valley import LossValley
from dagrad.utils.errors import ConfigError


def run(losses, **kw):
    v = LossValley(**{"rule": "paper", **kw})
    joined_at = {}
    for k, loss in enumerate(losses):
        for j in v.observe(loss):
            joined_at[j] = k
    return v, joined_at


def lagged_reference(losses, n_converge=3, n_tolerance=6, ratio=0.3, final=True):
    """The paper's rule written directly (t_s, threshold, t_e), with the end-of-training flush."""
    start = next((i for i in range(len(losses) - n_converge + 1)
                  if losses[i] <= min(losses[i:i + n_converge])), None)
    if start is None:
        return []
    thr = sum(losses[start:start + n_converge]) / n_converge * (1 + ratio)
    accepted = []
    for j in range(start, len(losses)):
        window = losses[j:j + n_tolerance]
        if len(window) < n_tolerance and not final:
            break
        if min(window) > thr:
            break
        accepted.append(j)
    return accepted


def test_start_is_first_segment_whose_next_two_do_not_improve():
    v, _ = run([5.0, 4.0, 3.0, 3.5, 3.2, 3.1])
    assert v.start == 2  # 3.0 <= min(3.5, 3.2) is first known at evaluation 4
    assert v.threshold == pytest.approx((3.0 + 3.5 + 3.2) / 3 * 1.3)
    assert v.state == "averaging"


def test_no_convergence_while_loss_keeps_falling():
    v, _ = run([5.0, 4.0, 3.0, 2.0, 1.0])
    assert v.state == "converging" and v.start is None and v.accepted == []
    assert v.pending == [2, 3, 4]  # only the last n_converge segments are kept as start candidates
    assert v.finish() == [] and v.accepted == []


def test_inclusion_end_and_decision_times():
    # start 0, threshold = mean(1, 1.1, 1.2) * 1.3 = 1.43; losses from index 3 on are all above it
    losses = [1.0, 1.1, 1.2, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    v, joined_at = run(losses)
    assert v.start == 0 and v.threshold == pytest.approx(1.43)
    assert v.accepted == [0, 1, 2]
    assert joined_at == {0: 2, 1: 2, 2: 2}  # each is sure at once: its own loss is below the threshold
    # segment 3's window [3..8] is complete at evaluation 8: the valley dies there, t_e = 3
    assert v.end == 3 and v.state == "dead" and v.stopped_at == 8
    dead_at = next(k for k in range(len(losses)) if run(losses[:k + 1])[0].state == "dead")
    assert dead_at == 8


def test_segment_above_threshold_joins_if_a_later_one_in_its_window_is_below():
    losses = [1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
    v, joined_at = run(losses)
    # 3 sees 1.0 at index 8 (within 3..8) -> joins; 4..8 too; 9's window 9..14 all 9.0 -> dies
    assert v.accepted == list(range(0, 9))
    assert joined_at[3] == 8 and v.end == 9 and v.state == "dead"
    assert v.accepted == lagged_reference(losses)


def test_flush_at_finish_uses_the_losses_seen_so_far():
    losses = [1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0]
    v, _ = run(losses)
    assert v.accepted == [0, 1, 2, 3] and v.pending == [4, 5, 6] and v.state == "averaging"
    assert v.finish() == []  # 4's seen window (5, 5, 5) is above the threshold 1.3: stop there
    assert v.end == 4 and v.finished
    v2, _ = run([1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 1.2])
    # 1.2 <= 1.3 settles 4, 5 and 6 at once; nothing is left for the flush, and the valley is not dead
    assert v2.accepted == [0, 1, 2, 3, 4, 5, 6] and v2.pending == []
    assert v2.finish() == [] and v2.state == "averaging" and v2.end is None
    assert v2.finish() == []  # idempotent
    with pytest.raises(RuntimeError):
        v2.observe(1.0)


@pytest.mark.parametrize("seed", range(25))
def test_matches_the_lagged_paper_rule_on_random_sequences(seed):
    import random

    rng = random.Random(seed)
    losses = [rng.uniform(0.5, 2.0) for _ in range(rng.randint(3, 30))]
    v, _ = run(losses)
    v.finish()
    assert v.accepted == lagged_reference(losses)


def test_non_finite_losses_never_converge_nor_keep_the_valley():
    v, _ = run([1.0, math.nan, 2.0, 3.0, 4.0])
    assert v.start == 2  # windows holding the NaN cannot signal convergence
    v2, _ = run([1.0, 1.0, 1.0] + [math.inf] * 8)
    assert v2.accepted == [0, 1, 2] and v2.end == 3


def test_state_dict_round_trip_continues_identically():
    losses = [3.0, 2.0, 2.1, 2.2, 2.0, 2.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    full, _ = run(losses)
    half, _ = run(losses[:5])
    resumed = LossValley(rule="paper")
    resumed.load_state_dict(half.state_dict())
    for loss in losses[5:]:
        resumed.observe(loss)
    assert resumed.state_dict() == full.state_dict()
    with pytest.raises(ConfigError, match="same settings"):
        LossValley(n_tolerance=4, rule="paper").load_state_dict(half.state_dict())
    with pytest.raises(ConfigError, match="same settings"):
        LossValley(rule="khanrc").load_state_dict(half.state_dict())


@pytest.mark.parametrize("kw", [{"n_converge": 0}, {"n_tolerance": 1.5}, {"tolerance_ratio": -0.1},
                                {"tolerance_ratio": math.inf}, {"rule": "lagged"}])
def test_bad_settings_are_config_errors(kw):
    """The valley's options are checked once, against the averager's registry entry (never again when built)."""
    from dagrad.averaging import AVERAGERS

    with pytest.raises(ConfigError, match="averaging.options."):
        AVERAGERS.resolve("swad", kw)
