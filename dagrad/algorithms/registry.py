"""Algorithms by name, with DomainBed-style hyperparameters: each one an `Option` with a default, a valid
range and a random-search distribution, declared next to the algorithm.

Random search is seeded as DomainBed's `train.py` seeds it: the hyperparameter `name` of trial
`trial_seed` under `hparams_seed` is drawn from `RandomState(seed_hash(seed_hash(hparams_seed,
trial_seed), name))`, so every trial seed draws its own configuration (the search's noise is inside the
error bar, as in DomainBed), adding a hyperparameter never changes the others' draws, and dagrad's draws
equal DomainBed's for the same (algorithm, dataset, hparams_seed, trial_seed). hparams_seed 0 means the
defaults. Learning rate and weight decay follow DomainBed's two tables: one for small-image datasets (its
MNIST defaults), one for everything else."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from dagrad.utils.errors import ConfigError
from dagrad.registry import Option, Registry
from dagrad.utils.seeding import seed_hash

def _build(entry: Any, hparams: dict[str, Any], featurizer: Any, num_classes: int, num_domains: int,
           input_shape: Optional[tuple[int, ...]] = None) -> Any:
    """The algorithm around `featurizer`, ready to train; `input_shape` (the data's) goes to an algorithm
    whose featurizer reads extra channels."""
    cls = entry.load()
    if getattr(cls, "extra_input_channels", 0):
        return cls(featurizer, num_classes, num_domains, hparams, input_shape=input_shape)
    return cls(featurizer, num_classes, num_domains, hparams)


#: an entry builds with its resolved hyperparameters as options: `entry.build(hparams, featurizer=...,
#: num_classes=..., num_domains=..., input_shape=...)`
ALGORITHMS: Registry[type] = Registry("algorithm", "algorithm.name", builtins="dagrad.algorithms",
                                      options_key="algorithm.hparams", builder=_build)

#: a mapping, or a function of small_images (and, when it takes two arguments, of the dataset's name)
HParamTable = Union[Mapping[str, Option], Callable[..., Mapping[str, Option]]]


def log_uniform(low: float, high: float) -> Callable[[np.random.RandomState], float]:
    """10 ** U(low, high), DomainBed's distribution for rates and weights."""
    return lambda r: float(10 ** r.uniform(low, high))


def common_hparams(small_images: bool) -> dict[str, Option]:
    """lr and weight decay, as DomainBed's registry sets them for small and for full-size images."""
    if small_images:
        return {
            "lr": Option(1e-3, float, "Adam learning rate", low=0.0, low_open=True, search=log_uniform(-4.5, -2.5)),
            "weight_decay": Option(0.0, float, "Adam weight decay", low=0.0, search=lambda r: 0.0),
        }
    return {
        "lr": Option(5e-5, float, "Adam learning rate", low=0.0, low_open=True, search=log_uniform(-5, -3.5)),
        "weight_decay": Option(0.0, float, "Adam weight decay", low=0.0, search=log_uniform(-6, -2)),
    }


def batch_size_option(small_images: bool, exponents: Optional[tuple[float, float]] = None,
                      fixed: Optional[int] = None) -> Option:
    """DomainBed's `batch_size` hyperparameter (per training environment): 64, int(2^U(3, 9)) on small
    images; 32, int(2^U(3, 5.5)) otherwise; a dataset may narrow the exponents (DomainNet: (3, 5)); an
    algorithm may fix it on full-size images (`fixed`, ARM's 8), as DomainBed's registry does."""
    if fixed is not None and not small_images:
        return Option(fixed, int, "examples per training environment per step", low=1, search=lambda r: fixed)
    low, high = exponents or ((3.0, 9.0) if small_images else (3.0, 5.5))
    return Option(64 if small_images else 32, int, "examples per training environment per step", low=1,
                  search=lambda r: int(2 ** r.uniform(low, high)))


def register(name: str, hparams: Optional[HParamTable] = None, description: str = "") -> Callable[[type], type]:
    """Class decorator: make an Algorithm subclass available as `algorithm.name: <name>`.

    `hparams` maps names to Options (or is a function of `small_images`, or of `small_images` and the
    dataset's name, as DomainBed's registry is for RDM, returning them); lr and weight_decay are added
    unless the table defines its own."""
    by_dataset = callable(hparams) and len(inspect.signature(hparams).parameters) >= 2

    def table(small_images: bool = False, dataset: str = "") -> dict[str, Option]:
        if by_dataset:
            own = hparams(small_images, dataset)
        else:
            own = hparams(small_images) if callable(hparams) else dict(hparams or {})
        return {**common_hparams(small_images), **own}

    return ALGORITHMS.register(name, description=description, options=table)


def hparam_table(name: str, small_images: bool, dataset: str = "") -> dict[str, Option]:
    return ALGORITHMS.get(name).option_table(small_images=small_images, dataset=dataset)


def resolve_hparams(name: str, overrides: Mapping[str, Any], hparams_seed: int, small_images: bool,
                    trial_seed: int = 0, dataset: str = "") -> dict[str, Any]:
    """Defaults (hparams_seed 0) or the random-search draw of (hparams_seed, trial_seed), then the user's
    overrides on top, each checked against the hyperparameter's valid range; `dataset` (dagrad's name)
    for the few algorithms whose table depends on it."""
    table = hparam_table(name, small_images, dataset)
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ConfigError(
            f"algorithm.hparams.{unknown[0]}: not a hyperparameter of {name}; allowed: {', '.join(sorted(table))}"
        )
    values = {key: draw(opt, hparams_seed, key, trial_seed) for key, opt in table.items()}
    for key, value in overrides.items():
        values[key] = table[key].check(value, f"algorithm.hparams.{key}")
    return values


def search_seed(hparams_seed: int, trial_seed: int, key: str) -> int:
    """The seed of one hyperparameter's draw: DomainBed's `misc.seed_hash(misc.seed_hash(hparams_seed,
    trial_seed), name)` (train.py hands `seed_hash(hparams_seed, trial_seed)` to `random_hparams`, whose
    `_hparam` seeds each name with `seed_hash(random_seed, name)`)."""
    return seed_hash(seed_hash(hparams_seed, trial_seed), key)


def draw(option: Option, hparams_seed: int, key: str, trial_seed: int = 0) -> Any:
    """The option's default for hparams_seed 0, else its random-search draw for (hparams_seed, trial_seed)."""
    if hparams_seed == 0 or option.search is None:
        return option.default
    return option.search(np.random.RandomState(search_seed(hparams_seed, trial_seed, key)))


def featurizer_input_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape the named algorithm's featurizer reads, given the data's (ARM adds a channel)."""
    extra = int(getattr(ALGORITHMS.load(name), "extra_input_channels", 0))
    return (input_shape[0] + extra, *input_shape[1:]) if extra else tuple(input_shape)


def build(name: str, hparams: Mapping[str, Any], featurizer: Any, num_classes: int, num_domains: int,
          input_shape: Optional[tuple[int, ...]] = None) -> Any:
    """The named algorithm with these (resolved) hyperparameters through its entry (scripts and tests; a run
    builds the algorithm its Experiment holds)."""
    return ALGORITHMS.get(name).build(hparams, featurizer=featurizer, num_classes=num_classes,
                                      num_domains=num_domains, input_shape=input_shape)
