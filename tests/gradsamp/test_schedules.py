"""GradSamp schedules: exact epoch lists, reproducible randomness, and the shared safety rules."""

from __future__ import annotations

import pytest

from dagrad.config.schema import GradSampConfig, from_dict
from dagrad.utils.errors import ConfigError
from dagrad.gradsamp import planned_epochs, resolve_settings
from dagrad.registry import Option


def build_schedule(name, max_consecutive=None, seed=0, **options):
    """A schedule as a run gets it: its config checked by the schema, resolved once, built through its entry."""
    cfg = from_dict({"sampler": "tensor", "schedule": name, "schedule_options": options,
                     "max_consecutive": max_consecutive}, GradSampConfig, "gradsamp.")
    return resolve_settings(cfg).build_schedule(seed)


def test_periodic_exact_epochs():
    s = build_schedule("periodic", every=3, start=2)
    assert [e for e in range(12) if s.wants(e)] == [2, 5, 8, 11]
    assert planned_epochs(s, 12) == [2, 5, 8, 11]


def test_never_before_two_real_epochs():
    s = build_schedule("periodic", every=1, start=0)
    assert not s.decide(0, real_epochs=0, consecutive_sampled=0)
    assert not s.decide(1, real_epochs=1, consecutive_sampled=0)
    assert s.decide(2, real_epochs=2, consecutive_sampled=0)
    # every epoch wanted, no cap: after two real epochs everything is sampled
    assert planned_epochs(s, 6) == [2, 3, 4, 5]
    # a late start still needs two real epochs even when the wanted epoch comes first
    assert planned_epochs(build_schedule("epochs", epochs=[0, 1, 2, 3]), 5) == [2, 3]


def test_max_consecutive_caps_runs_of_sampled_epochs():
    s = build_schedule("periodic", every=1, start=0, max_consecutive=2)
    assert planned_epochs(s, 10) == [2, 3, 5, 6, 8, 9]
    assert not s.decide(4, real_epochs=2, consecutive_sampled=2)
    assert s.decide(4, real_epochs=2, consecutive_sampled=1)


def test_random_is_reproducible_by_seed_and_epoch_alone():
    a = build_schedule("random", probability=0.3, seed=11)
    b = build_schedule("random", probability=0.3, seed=11)
    c = build_schedule("random", probability=0.3, seed=12)
    epochs = range(4000)
    wa = [a.wants(e) for e in epochs]
    assert wa == [b.wants(e) for e in epochs]
    assert wa != [c.wants(e) for e in epochs]
    assert abs(sum(wa) / len(wa) - 0.3) < 0.03
    # out-of-order queries (a resumed run) give the same answers
    assert [a.wants(e) for e in reversed(epochs)] == wa[::-1]
    assert not any(build_schedule("random", probability=0.0, seed=1).wants(e) for e in epochs)
    assert all(build_schedule("random", probability=1.0, seed=1).wants(e) for e in epochs)


def test_epochs_list_is_honoured():
    s = build_schedule("epochs", epochs=[7, 3, 4])
    assert planned_epochs(s, 10) == [3, 4, 7]
    assert planned_epochs(build_schedule("epochs", epochs=[3, 4, 5], max_consecutive=2), 10) == [3, 4]


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("weekly", {}, "unknown schedule 'weekly'; choose one of: epochs, periodic, random"),
        ("periodic", {"every": 0}, "schedule_options.every: 0 is out of range; allowed: an integer >= 1"),
        ("periodic", {"start": -1}, "schedule_options.start: -1 is out of range; allowed: an integer >= 0"),
        ("random", {"probability": 1.5}, "schedule_options.probability: 1.5 is out of range"),
        ("epochs", {"epochs": [-1]}, r"schedule_options.epochs\[0\]: -1 is out of range"),
        ("periodic", {"max_consecutive": 0}, "max_consecutive"),
        ("periodic", {"probability": 0.1}, "probability: not an option of periodic; allowed: every, start"),
    ],
)
def test_bad_schedules_are_rejected(name, params, match):
    with pytest.raises(ConfigError, match=match):
        build_schedule(name, **params)


def test_each_schedule_and_sampler_gives_its_own_label():
    from dagrad.analysis.study import reading_label, schedule_label
    from dagrad.gradsamp.samplers import SAMPLERS
    from dagrad.gradsamp.schedules import SCHEDULES, Periodic, Schedule

    defaults = SCHEDULES.get("periodic").defaults()
    assert Periodic.label({"every": 3, "start": 2}, defaults) == "every 3"
    assert Periodic.label({"every": 4, "start": 5}, defaults) == "every 4 from 5"
    assert SCHEDULES.load("random").label({"probability": 0.25}, {"probability": 0.3}) == "random p=0.25"
    assert SCHEDULES.load("epochs").label({"epochs": [3, 6]}, {"epochs": []}) == "epochs 3,6"
    assert Schedule.label({"k": 2.0}, None) == "base k=2"
    ema = SAMPLERS.get("ema")
    assert ema.load().label({**ema.defaults(), "scale": 0.5, "decay": 0.8}, ema.defaults()) == "ema α=0.5 decay=0.8"
    # the study asks the registered component; one not registered here shows every option
    assert schedule_label({"schedule": "random", "schedule_options": {"probability": 0.3}, "max_consecutive": 2}) \
        == "random p=0.3 (≤2 in a row)"
    assert schedule_label({"schedule": "mine", "schedule_options": {"n": 1}}) == "mine n=1"
    assert reading_label({"sampler": "mine", "sampler_options": {"scale": 2, "c": 1}}) == "mine α=2 c=1"


def test_a_schedule_class_owns_its_label_in_the_study():
    from dagrad.analysis.study import schedule_label
    from dagrad.gradsamp.schedules import SCHEDULES, Schedule

    class Every(Schedule):
        name = "test_every_label"

        @classmethod
        def label(cls, options, defaults=None):
            return f"each {options['n']}"

    SCHEDULES.register("test_every_label", Every, options={"n": Option(2, int, "n", low=1)})
    try:
        assert schedule_label({"schedule": "test_every_label", "schedule_options": {"n": 5}}) == "each 5"
    finally:
        SCHEDULES.unregister("test_every_label")
