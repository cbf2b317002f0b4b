"""Every component is resolved once, into the Experiment, and built only from it:

- the run's parts build the same from an Experiment whose raw config sections for the components are
  poisoned (any read of them fails), so no builder reads the raw config;
- every kind builds through one call, `entry.build(options, **context)`;
- a new sampler, schedule, averager and energy backend each take one file (tests/helpers/one_file_components.py)
  and run end to end without any other change."""

from __future__ import annotations

import copy

import pytest
import torch

from dagrad.config.experiment import load_experiment
from dagrad.registry import REGISTRIES, Resolved
from dagrad.records.files import read_records, split_run
from dagrad.run import distributed
from dagrad.run.parts import build_parts
from dagrad.run.training import train_run
from dagrad.utils.errors import ConfigError
from dagrad.utils.seeding import seed_everything

from conftest import TINY

EVERYTHING = [*TINY, "algorithm.name=coral", "algorithm.hparams.mmd_gamma=0.5", "network.options.width=12",
              "gradsamp.sampler=ema", "gradsamp.sampler_options={scale: 0.5, decay: 0.3}",
              "gradsamp.schedule=periodic", "gradsamp.schedule_options={every: 1, start: 2}",
              "gradsamp.max_consecutive=2", "gradsamp.guard=true", "gradsamp.buffers=extrapolate",
              "averaging.name=swad", "averaging.options.n_converge=2", "energy.backend=estimate",
              "energy.backends.estimate.watts_per_thread=5", "energy.count_flops=false", "precision=bf16",
              "channels_last=true", "device=cpu"]


class Poison:
    """A config section no builder may read: any use of it fails, naming the section."""

    def __init__(self, section: str) -> None:
        object.__setattr__(self, "_section", section)

    def _refuse(self, *args, **kwargs):
        raise AssertionError(f"a builder read the raw config's {object.__getattribute__(self, '_section')}")

    __getattr__ = __eq__ = __hash__ = __bool__ = __str__ = __iter__ = __len__ = __deepcopy__ = _refuse


def poisoned(exp):
    """The same Experiment, its raw config's component sections poisoned (the data section and the run's
    own settings, such as epochs and the device, stay: they say how the run goes, not what it builds)."""
    cfg = copy.copy(exp.cfg)
    for section in ("gradsamp", "energy", "averaging", "network", "algorithm", "precision", "deterministic",
                    "channels_last", "tracking"):
        setattr(cfg, section, Poison(section))
    out = copy.copy(exp)
    out.cfg = cfg
    return out


def facts(parts) -> dict:
    """What the parts were built with, in plain data."""
    gs, avg = parts.gradsamp, parts.averager
    return {
        "weights": {k: v.clone() for k, v in parts.algorithm.state_dict().items()},
        "hparams": parts.algorithm.hparams, "features": parts.algorithm.featurizer.n_outputs,
        "sampler": (type(gs.sampler).__name__, gs.sampler.scale, gs.sampler.decay, gs.sampler.c),
        "schedule": gs.schedule.describe(), "settings": (gs.settings.buffers, gs.settings.guard,
                                                         gs.settings.max_consecutive),
        "guard": [t.clone() for t in gs.guard_batch],
        "averager": (type(avg).__name__, avg.valley.n_converge, avg.valley.n_tolerance, avg.update_bn_steps),
        "meter": {k: v for k, v in parts.meter.describe().items() if k != "hardware"},
        "numerics": parts.numerics.describe(parts.algorithm),
        "flops": parts.flops.enabled, "steps": parts.steps,
    }


def built(exp, seed: int) -> dict:
    seed_everything(seed)
    parts = build_parts(exp, seed, distributed.current())
    try:
        return facts(parts)
    finally:
        parts.meter.close()


def test_no_builder_reads_the_raw_config():
    exp = load_experiment(None, EVERYTHING)
    plain, blind = built(exp, exp.seed), built(poisoned(exp), exp.seed)  # the seed is the identity's, not built
    assert plain["sampler"] == ("ExponentialAverage", 0.5, 0.3, 1.0)
    assert plain["schedule"]["every"] == 1 and plain["settings"] == ("extrapolate", True, 2)
    assert plain["averager"] == ("SWAD", 2, 6, 500) and plain["numerics"]["precision"] == "bf16"
    assert plain["meter"]["requested"] == "estimate" and plain["flops"] is False
    assert plain["hparams"]["mmd_gamma"] == 0.5
    weights, guard = plain.pop("weights"), plain.pop("guard")
    blind_weights, blind_guard = blind.pop("weights"), blind.pop("guard")
    assert plain == blind
    assert weights.keys() == blind_weights.keys() and all(torch.equal(weights[k], blind_weights[k]) for k in weights)
    assert all(torch.equal(a, b) for a, b in zip(guard, blind_guard))


def test_the_poison_would_catch_a_builder_that_reads_the_raw_config():
    exp = poisoned(load_experiment(None, EVERYTHING))
    with pytest.raises(AssertionError, match="raw config's gradsamp"):
        exp.cfg.gradsamp.sampler  # noqa: B018 - what GradSamp(cfg.gradsamp, ...) did before
    with pytest.raises(AssertionError, match="raw config's precision"):
        str(exp.cfg.precision)


def test_a_component_that_is_off_is_none():
    exp = load_experiment(None, [*TINY, "gradsamp.sampler=none", "averaging.name=none"])
    assert exp.gradsamp is None and exp.averager is None
    assert exp.canonical()["gradsamp"] == {"sampler": "none"} and exp.canonical()["averaging"] == {"name": "none"}


def test_each_component_is_held_resolved():
    exp = load_experiment(None, EVERYTHING)
    for part in (exp.dataset, exp.network, exp.algorithm, exp.gradsamp.sampler, exp.gradsamp.schedule,
                 exp.averager, exp.energy.backend):
        assert isinstance(part, Resolved)
    assert exp.gradsamp.sampler.options == {"scale": 0.5, "decay": 0.3, "c": 1.0}  # defaults filled in
    assert exp.averager.options["n_converge"] == 2 and exp.averager.options["rule"] == "khanrc"
    assert exp.energy.combined_options() == {"estimate": {"watts_per_thread": 5.0, "cpu_tdp_w": None}}
    assert exp.numerics.precision == "bf16" and exp.numerics.device is None


def test_every_kind_builds_through_one_call(tmp_path):
    """One entry of each kind, built by `entry.build(options, **context)` from its resolved options."""
    from dagrad.launch.runner import LAUNCHERS, LocalLauncher

    exp = load_experiment(None, EVERYTHING)
    suite = exp.dataset.build(data=exp.data_config())
    assert suite.env_names == ["rot0", "rot15", "rot30", "rot45", "rot60", "rot75"]
    featurizer = exp.network.build(input_shape=(1, 12, 12))
    assert featurizer.n_outputs > 0
    algorithm = exp.algorithm.build(featurizer=featurizer, num_classes=10, num_domains=5)
    assert type(algorithm).__name__ == "CORAL" and algorithm.hparams["mmd_gamma"] == 0.5
    assert exp.gradsamp.sampler.build().scale == 0.5
    assert exp.gradsamp.schedule.build(max_consecutive=2, seed=3).describe() == {
        "name": "periodic", "max_consecutive": 2, "every": 1, "start": 2}
    assert exp.averager.build(module=algorithm).valley.n_converge == 2
    picked = exp.energy.backend.build(device="cpu")
    assert [b.name for b in picked.backends] == ["estimate"] and picked.backends[0].watts_per_thread == 5.0
    assert isinstance(LAUNCHERS.resolve("local").build(workers=1), LocalLauncher)
    for plural, registry in REGISTRIES.items():  # no entry builds its own way
        assert all(entry.builder is registry.builder for entry in registry.entries()), plural


def test_a_sampler_keeps_its_scale_for_gradsamp():
    from dagrad.gradsamp import SAMPLERS

    assert SAMPLERS.build("element", {"scale": 0.25, "c": 0.1}).scale == 0.25
    assert SAMPLERS.build("skip").scale == 1.0  # no scale option: the whole (zero) step
    with pytest.raises(ConfigError, match="gradsamp.sampler_options.c: not an option of tensor"):
        SAMPLERS.build("tensor", {"c": 1.0})


@pytest.fixture
def one_file_components():
    from helpers import one_file_components

    yield one_file_components
    one_file_components.unregister()


def test_new_components_take_one_file_each(one_file_components, tmp_path):
    exp = load_experiment(None, [*TINY, "epochs=4", "steps_per_epoch=2", "gradsamp.sampler=half_step",
                                 "gradsamp.sampler_options.scale=0.5", "gradsamp.schedule=even_epochs",
                                 "averaging.name=epoch_mean", "energy.backend=fixed_watts",
                                 "energy.backends.fixed_watts.watts_per_thread=3"])
    header, epochs, summary = split_run(read_records(train_run(exp, tmp_path / "run", progress=False)))
    assert [e["kind"] for e in epochs] == ["train", "train", "sampled", "train"]
    assert {e["sampler"] for e in epochs} == {"half_step"} and epochs[2]["sampler_stats"]["scale"] == 0.5
    assert epochs[2]["updates"] == epochs[1]["updates"] == 4  # the sampled epoch made no update
    assert [e["averager"] for e in epochs] == [{"n_averaged": n} for n in (0, 1, 2, 3)]
    assert summary["reported"] == "averaged" and summary["metrics"]
    assert header["meter"]["requested"] == "fixed_watts"
    assert epochs[0]["energy"]["train"]["components"]["cpu"]["params"]["watts_per_thread"] == 3.0
    resolved = header["resolved"]
    assert resolved["gradsamp"]["schedule_options"] == {"first": 2}
    assert resolved["averaging"]["options"] == {"skip": 1}
    assert resolved["energy"]["backends"] == {"fixed_watts": {"watts_per_thread": 3.0}}
