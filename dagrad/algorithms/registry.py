"""Algorithms by name, with DomainBed-style hyperparameters: each one an `Option` with a default, a valid
range and a random-search distribution, declared next to the algorithm. Draws use a generator seeded
by (hparams_seed, hyperparameter name), so adding a hyperparameter never changes the others' draws;
hparams_seed 0 means the defaults. Learning rate and weight decay follow DomainBed's two tables: one
for small-image datasets (its MNIST defaults), one for everything else."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from dagrad.errors import ConfigError
from dagrad.registry import Option, Registry
from dagrad.seeding import seed_hash

ALGORITHMS: Registry[type] = Registry("algorithm", "algorithm.name", builtins="dagrad.algorithms")

HParamTable = Union[Mapping[str, Option], Callable[[bool], Mapping[str, Option]]]


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


def register(name: str, hparams: Optional[HParamTable] = None, description: str = "") -> Callable[[type], type]:
    """Class decorator: make an Algorithm subclass available as `algorithm.name: <name>`.

    `hparams` maps names to Options (or is a function of `small_images` returning them); lr and
    weight_decay are added unless the table defines its own."""

    def table(small_images: bool = False) -> dict[str, Option]:
        own = hparams(small_images) if callable(hparams) else dict(hparams or {})
        return {**common_hparams(small_images), **own}

    return ALGORITHMS.register(name, description=description, options=table)


def hparam_table(name: str, small_images: bool) -> dict[str, Option]:
    return ALGORITHMS.get(name).option_table(small_images=small_images)


def resolve_hparams(name: str, overrides: Mapping[str, Any], hparams_seed: int, small_images: bool) -> dict[str, Any]:
    """Defaults (hparams_seed 0) or a random-search draw, then the user's overrides on top, each checked
    against the hyperparameter's valid range."""
    table = hparam_table(name, small_images)
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ConfigError(
            f"algorithm.hparams.{unknown[0]}: not a hyperparameter of {name}; allowed: {', '.join(sorted(table))}"
        )
    values = {key: draw(opt, hparams_seed, key) for key, opt in table.items()}
    for key, value in overrides.items():
        values[key] = table[key].check(value, f"algorithm.hparams.{key}")
    return values


def draw(option: Option, hparams_seed: int, key: str) -> Any:
    """The option's default for hparams_seed 0, else its random-search draw for this seed."""
    if hparams_seed == 0 or option.search is None:
        return option.default
    return option.search(np.random.RandomState(seed_hash(hparams_seed, key)))


def build(name: str, hparams: Mapping[str, Any], featurizer: Any, num_classes: int, num_domains: int) -> Any:
    """The named algorithm around `featurizer`, ready to train."""
    return ALGORITHMS.load(name)(featurizer, num_classes, num_domains, dict(hparams))
