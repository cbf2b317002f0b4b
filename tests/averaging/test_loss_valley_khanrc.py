"""khanrc/swad's loss-valley rule (the default) on hand-traced loss curves.

Each expected `accepted` list below was traced by hand from khanrc/swad's `LossValley`
(`update_and_evaluate` and `get_final_model`): segments in the order they are added, repeated when added
again. h(k) = max(0, k - n_tolerance + 1) is the oldest segment in its queue at evaluation k.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from dagrad.averaging.loss_valley import LossValley


def run(losses, stop=True, **kw):
    v = LossValley(**{"rule": "khanrc", **kw})
    for loss in losses:
        v.observe(loss)
        if stop and v.state == "dead":
            break
    return v


def test_khanrc_is_the_default():
    assert LossValley().rule == "khanrc"


def test_look_back_skips_its_first_segment_and_counts_the_convergence_segment_twice():
    #            0    1    2    3    4    5    6    7    8    9    10   11   12   13   14   15
    losses = [3.0, 2.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    v = run(losses[:8])
    # evaluation 7: window (1.0, 1.1, 1.2) has its minimum first -> start 5, threshold 1.1 * 1.3 = 1.43.
    # look-back Q = queue[:4] = segments 2, 3, 4, 5 (losses 1.2, 1.1, 1.3, 1.0), none above 1.43, so
    # b = 0 and Q[1:] = 3, 4, 5 are added: segment 2 is skipped.
    assert v.start == 5 and v.threshold == pytest.approx(1.43)
    assert v.accepted == [3, 4, 5]
    v = run(losses)
    # evaluations 8, 9: h = 3, 4 < start, nothing. 10: h = 5, min(L5..L10) = 1.0 -> 5 again.
    # 11..14: h = 6..9, windows hold 1.1, 1.2, 1.3, 1.4 -> added. 15: h = 10, all 2.0 -> dead.
    assert v.accepted == [3, 4, 5, 5, 6, 7, 8, 9]
    assert v.state == "dead" and v.end == 10 and v.stopped_at == 15
    assert v.finish() == [] and v.accepted == [3, 4, 5, 5, 6, 7, 8, 9]


def test_look_back_stops_at_the_last_segment_above_the_threshold():
    #            0    1    2    3    4    5    6    7
    losses = [3.0, 2.5, 1.5, 2.0, 1.3, 1.0, 1.1, 1.2]
    v = run(losses)
    # start 5 (evaluation 7), threshold 1.43; Q = 2, 3, 4, 5 with losses 1.5, 2.0, 1.3, 1.0: the last one
    # above is 3 (position 1), b = 2, Q[3:] = [5]. Segment 4 (1.3, under the threshold) is skipped.
    assert v.start == 5 and v.accepted == [5]
    v = run(losses + [1.3, 1.3, 1.3])  # evaluation 10: h = 5 -> 5 is added a second time
    assert v.accepted == [5, 5]


def test_nothing_looked_back_leaves_the_convergence_segment_as_a_placeholder():
    #            0    1    2    3    4    5    6    7
    losses = [3.0, 2.5, 2.0, 1.8, 2.0, 1.0, 1.1, 1.2]
    v = run(losses)
    # Q = 2, 3, 4, 5 with losses 2.0, 1.8, 2.0, 1.0: the last above is 4 (position 2), b = 3, Q[4:] empty
    assert v.start == 5 and v.accepted == [] and v.state == "averaging"
    assert 5 in v.pending  # SWAD keeps it: the convergence segment is the average until an addition
    v = run(losses + [1.5, 1.5, 1.5])
    assert v.accepted == [5]  # evaluation 10: h = 5, counted once


def test_early_convergence_repeats_the_head_of_a_short_queue():
    #            0    1    2    3    4    5    6     7    8    9    10   11   12
    losses = [1.0, 1.1, 1.2, 1.3, 1.35, 1.4, 1.42, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    v = run(losses)
    # evaluation 2: start 0, threshold 1.43; the queue holds only 0, 1, 2, so Q = 0, 1, 2 (after the start
    # too), none above, Q[1:] = 1, 2. Evaluations 3, 4, 5: h = 0 (queue not full) -> 0 each time.
    # 6..11: h = 1..6, each window holds a loss <= 1.42 -> added; 12: h = 7, all 5.0 -> dead.
    assert v.accepted == [1, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert Counter(v.accepted) == {0: 3, 1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}
    assert v.end == 7 and v.stopped_at == 12


def test_end_of_training_flush_drops_the_queue_head_and_stops_at_the_first_failure():
    #            0    1    2    3    4    5    6    7    8    9    10
    losses = [3.0, 2.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2, 1.3, 2.0, 2.0]
    v = run(losses)
    assert v.accepted == [3, 4, 5, 5] and v.state == "averaging"  # evaluation 10 added h = 5
    # flush: queue 5..10, its head 5 dropped; 6: min(L6..L10) = 1.1 ok, 7: 1.2 ok, 8: 1.3 ok,
    # 9: min(2.0, 2.0) > 1.43 -> stop
    assert v.finish() == [6, 7, 8]
    assert v.accepted == [3, 4, 5, 5, 6, 7, 8] and v.stopped_at is None and v.finished
    assert v.finish() == []  # idempotent
    with pytest.raises(RuntimeError):
        v.observe(1.0)


def test_flush_before_the_valley_reaches_the_start_adds_look_back_segments_again():
    losses = [3.0, 2.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2, 1.3]
    v = run(losses)
    assert v.accepted == [3, 4, 5]  # evaluation 8: h = 3 < start 5, nothing
    # flush: queue 3..8, head 3 dropped; 4..8 each see a loss <= 1.43 in what follows (no start check)
    assert v.finish() == [4, 5, 6, 7, 8]
    assert Counter(v.accepted) == {3: 1, 4: 2, 5: 2, 6: 1, 7: 1, 8: 1}


def test_a_dead_valley_is_not_flushed_and_no_convergence_adds_nothing():
    v = run([1.0, 1.1, 1.2, 1.3, 1.4, 1.42, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], n_tolerance=3, n_converge=3)
    # n_tolerance == n_converge: no look-back; evaluation k >= 3 adds h = k - 2 (so 0 is never added)
    # 3: 1, 4: 2, 5: 3, 6: 4 (1.4, 1.42, 5.0), 7: 5 (1.42), 8: h = 6, all 5.0 -> dead
    assert v.accepted == [1, 2, 3, 4, 5] and v.stopped_at == 8 and v.end == 6
    assert v.finish() == []
    falling = run([5.0, 4.0, 3.0, 2.0, 1.0])
    assert falling.start is None and falling.finish() == [] and falling.accepted == []


def test_fewer_tolerance_than_converge_adds_the_segments_after_the_start():
    v = run([1.0, 1.1, 1.2, 1.3, 5.0], n_converge=3, n_tolerance=1)
    # evaluation 2: start 0; look-back adds the converge queue's 1 .. n_c - n_t: segments 1, 2;
    # 3: h = 3, 1.3 <= 1.43 -> 3; 4: h = 4, 5.0 -> dead. Segment 0 never counts.
    assert v.accepted == [1, 2, 3] and v.stopped_at == 4 and v.end == 4
    # the look-back does not check the threshold: 1 (2.0 > 1.3433) is added, and the stop comes later
    # than the paper's, which fails segment 1 at once (evaluation 2)
    v = run([1.0, 2.0, 1.1, 1.2, 5.0], n_converge=3, n_tolerance=1)
    assert v.threshold == pytest.approx(4.1 / 3 * 1.3)
    assert v.accepted == [1, 2, 3] and v.stopped_at == 4
    paper = run([1.0, 2.0, 1.1, 1.2, 5.0], n_converge=3, n_tolerance=1, rule="paper")
    assert paper.accepted == [0] and paper.stopped_at == 2 and paper.end == 1


def test_non_finite_losses_never_converge_nor_keep_the_valley():
    v = run([1.0, math.nan, 2.0, 3.0, 4.0])
    assert v.start == 2
    v2 = run([1.0, 1.0, 1.0] + [math.inf] * 8)
    # start 0, Q = 0, 1, 2 -> 1, 2; evaluations 3, 4, 5 add h = 0; 6: h = 1, window holds 1.0 -> 1;
    # 7: h = 2 -> 2; 8: h = 3, all inf -> dead
    assert v2.accepted == [1, 2, 0, 0, 0, 1, 2] and v2.stopped_at == 8


def test_state_dict_round_trip_continues_identically():
    losses = [3.0, 2.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    for cut in range(len(losses)):
        full = run(losses, stop=False)
        half = run(losses[:cut], stop=False)
        resumed = LossValley()
        resumed.load_state_dict(half.state_dict())
        for loss in losses[cut:]:
            resumed.observe(loss)
        assert resumed.state_dict() == full.state_dict()


def _synthetic_curve(rng: random.Random) -> list[float]:
    """A falling validation loss that may turn up again (overfitting), with noise."""
    tau, floor, turn = rng.uniform(1, 10), rng.uniform(0.2, 1.0), rng.randint(0, 30)
    rise, noise = rng.uniform(0, 0.03), rng.uniform(0.0, 0.1)
    return [abs(2 * math.exp(-t / tau) + floor + rise * max(0, t - turn) ** 2 + rng.gauss(0, noise))
            for t in range(rng.randint(3, 60))]


def test_both_rules_stop_at_the_same_evaluation_on_random_curves():
    """With n_tolerance >= n_converge (SWAD's settings) the rules agree on start and stop, not on what
    they average; with n_tolerance < n_converge they can stop apart (test above)."""
    rng = random.Random(0)
    same_stop = same_segments = stopped = 0
    n = 300
    for _ in range(n):
        losses = _synthetic_curve(rng)
        n_converge = rng.randint(1, 4)
        kw = {"n_converge": n_converge, "n_tolerance": rng.randint(n_converge, 8),
              "tolerance_ratio": rng.choice([0.2, 0.3])}
        khanrc, paper = run(losses, **kw), run(losses, rule="paper", **kw)
        khanrc.finish(), paper.finish()
        same_stop += khanrc.stopped_at == paper.stopped_at and khanrc.start == paper.start
        same_segments += Counter(khanrc.accepted) == Counter(paper.accepted)
        stopped += khanrc.stopped_at is not None
    assert same_stop == n and stopped > n // 2  # most curves turn up and stop training early
    assert same_segments < 0.8 * n  # the rules differ in what they average, not in when they stop
