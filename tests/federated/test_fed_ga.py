"""FedDG-GA's weight update pinned to the reference (MediaBrain-SJTU/FedDG-GA, utils/weight_adjust.py and the
round loop of algorithms/*/train_pacs_GA.py): uniform start; gap = global metric minus local metric, sign
+1 for loss and -1 for accuracy; gaps divided by their largest magnitude; step 1/3 · d_i with
d_i = d - (i - 1) · d / comm for rounds i = 0..comm; clip to [0, 1]; divide by the sum. Values worked by
hand. Also pinned: dagrad's choices where the reference is undefined (all gaps 0, everything clipped) and
partial participation (absent clients have gap 0, as FedDG-Benchmark applies GA)."""

from __future__ import annotations

import pytest

from dagrad.federated.fedga import GeneralizationAdjustment, adjust_weights, ga_step_size
from dagrad.utils.errors import ConfigError


def test_step_size_decays_linearly_as_the_reference_schedules_it():
    # 11 rounds (reference comm = 10): d_0 = 0.2 + 0.02, d_1 = 0.2, d_10 = 0.02
    assert ga_step_size(0, 11, 0.2) == pytest.approx(0.22)
    assert ga_step_size(1, 11, 0.2) == pytest.approx(0.2)
    assert ga_step_size(10, 11, 0.2) == pytest.approx(0.02)
    # the reference's defaults, comm = 40: the last round's step is 0.2 - 39 · 0.005
    assert ga_step_size(40, 41, 0.2) == pytest.approx(0.005)
    assert ga_step_size(0, 1, 0.2) == 0.2


def test_one_round_of_adjustment_by_hand():
    ga = GeneralizationAdjustment(["a", "b", "c"], rounds=11, step_size=0.2, metric="loss")
    assert ga.weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    new = ga.update(0, local={"a": 0.5, "b": 0.9, "c": 0.4}, global_={"a": 0.8, "b": 0.3, "c": 0.4})
    # gaps (global - local) [0.3, -0.6, 0] / 0.6 = [0.5, -1, 0]; step 0.22 / 3
    # w = 1/3 + [0.036667, -0.073333, 0] = [0.37, 0.26, 0.333333], sum 0.963333
    assert new == pytest.approx({"a": 0.37 / 0.963333, "b": 0.26 / 0.963333, "c": (1 / 3) / 0.963333}, abs=1e-6)
    assert new == pytest.approx({"a": 0.384083, "b": 0.269896, "c": 0.346021}, abs=1e-6)
    assert sum(new.values()) == pytest.approx(1.0)


def test_the_update_matches_the_reference_formula_on_identical_numbers():
    """The reference's rule written out independently (a dict of weights, the 1/3 factor, np-free clip)."""
    weights, gaps, d = [0.2, 0.5, 0.3], [0.04, -0.01, 0.02], 0.15

    def reference_rule(w, g, step):
        top = max(abs(x) for x in g)
        moved = [min(1.0, max(0.0, wi + gi / top * step / 3)) for wi, gi in zip(w, g)]
        return [m / sum(moved) for m in moved]

    assert adjust_weights(weights, gaps, d / 3) == pytest.approx(reference_rule(weights, gaps, d))


def test_accuracy_flips_the_sign():
    ga = GeneralizationAdjustment([0, 1, 2], rounds=3, step_size=0.3, metric="accuracy")
    new = ga.update(1, local={0: 0.9, 1: 0.8, 2: 0.7}, global_={0: 0.85, 1: 0.8, 2: 0.75})
    # accuracy gaps -(global - local) = [0.05, 0, -0.05] -> [1, 0, -1]; d_1 = 0.3, step 0.1
    # [0.433333, 0.333333, 0.233333], sum 1
    assert [new[c] for c in (0, 1, 2)] == pytest.approx([0.4333333, 0.3333333, 0.2333333])


def test_weights_are_clipped_at_zero_and_renormalised():
    # [0.05 - 0.1, 0.95 + 0.1] clipped to [0, 1]
    assert adjust_weights([0.05, 0.95], [-2.0, 2.0], 0.1) == [0.0, 1.0]
    # [0.1 - 0.2, 0.3 + 0.1, 0.6 + 0.2] -> [0, 0.4, 0.8] / 1.2
    assert adjust_weights([0.1, 0.3, 0.6], [-1.0, 0.5, 1.0], 0.2) == pytest.approx([0.0, 1 / 3, 2 / 3])


def test_degenerate_cases_keep_the_weights():
    # all gaps 0: the reference divides by zero; the weights stay
    assert adjust_weights([0.25, 0.75], [0.0, 0.0], 0.1) == [0.25, 0.75]
    # every weight clipped to 0: the weights stay
    assert adjust_weights([0.5, 0.5], [-1.0, -1.0], 0.6) == [0.5, 0.5]


def test_partial_participation():
    ga = GeneralizationAdjustment(["a", "b", "c"], rounds=2, step_size=0.3, scale=1.0)
    assert ga.coefficients(["a", "c"]) == pytest.approx({"a": 0.5, "c": 0.5})
    # round 1 of 2: d_1 = 0.3; gaps a: 0.2, c: -0.1, b absent (0): [1, 0, -0.5] · 0.3
    # [0.633333, 0.333333, 0.183333], sum 1.15
    new = ga.update(1, local={"a": 0.1, "c": 0.5}, global_={"a": 0.3, "c": 0.4})
    assert new == pytest.approx({"a": 0.633333 / 1.15, "b": 0.333333 / 1.15, "c": 0.183333 / 1.15}, abs=1e-6)
    # the round's aggregation coefficients: the participants' weights renormalised
    assert ga.coefficients(["a", "c"]) == pytest.approx({"a": 0.633333 / 0.816667, "c": 0.183333 / 0.816667}, abs=1e-6)


def test_state_round_trips():
    ga = GeneralizationAdjustment(["a", "b"], rounds=5)
    ga.update(0, {"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 1.5})
    again = GeneralizationAdjustment(["a", "b"], rounds=5)
    again.load_state_dict(ga.state_dict())
    assert again.weights == ga.weights
    with pytest.raises(ValueError, match="other clients"):
        GeneralizationAdjustment(["a", "c"], rounds=5).load_state_dict(ga.state_dict())


@pytest.mark.parametrize("kwargs, message", [
    ({"clients": [], "rounds": 3}, r"^federated.fedga: clients \[\] must be at least one"),
    ({"clients": ["a", "a"], "rounds": 3}, "each named once"),
    ({"clients": ["a"], "rounds": 0}, r"^federated.rounds: 0 is not allowed; use an integer >= 1$"),
    ({"clients": ["a"], "rounds": 3, "metric": "acc"}, r"^federated.fedga.metric: 'acc' is not allowed; use one of: loss, accuracy$"),
    ({"clients": ["a"], "rounds": 3, "step_size": -0.1}, r"^federated.fedga.step_size: -0.1 is not allowed"),
])
def test_bad_settings_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GeneralizationAdjustment(**kwargs)


def test_bad_updates_are_refused():
    ga = GeneralizationAdjustment(["a", "b"], rounds=3)
    with pytest.raises(ValueError, match="not among"):
        ga.update(0, {"z": 1.0}, {"z": 1.0})
    with pytest.raises(ValueError, match="round 3 is outside 0..2"):
        ga.update(3, {"a": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="local metrics for"):
        ga.update(0, {"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="gaps must be finite"):
        adjust_weights([0.5, 0.5], [float("nan"), 1.0], 0.1)
