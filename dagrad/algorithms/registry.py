"""Algorithms by name, with DomainBed-style hyperparameters: a default and a random-search distribution
each, drawn with a generator seeded by (hparams_seed, hyperparameter name) so that adding a
hyperparameter never changes the others' draws. hparams_seed 0 means the defaults."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from dagrad.errors import ConfigError
from dagrad.seeding import seed_hash

#: built-in algorithms, imported only when first needed
_BUILTIN = {
    "erm": "dagrad.algorithms.erm",
    "coral": "dagrad.algorithms.coral",
    "dann": "dagrad.algorithms.dann",
    "dann_grl": "dagrad.algorithms.dann_grl",
}

#: datasets of small images, for which DomainBed uses its MNIST defaults (lr 1e-3, no weight decay)
SMALL_IMAGE_DATASETS = {"rotated_digits", "stroke_digits"}


@dataclass(frozen=True)
class HParam:
    default: Any
    sample: Callable[[np.random.RandomState], Any]


HParamTable = Union[dict[str, HParam], Callable[[str], dict[str, HParam]]]


@dataclass
class AlgorithmSpec:
    name: str
    cls: type
    hparams: HParamTable = field(default_factory=dict)
    description: str = ""

    def table(self, dataset: str) -> dict[str, HParam]:
        own = self.hparams(dataset) if callable(self.hparams) else self.hparams
        return {**common_hparams(dataset), **own}


_REGISTRY: dict[str, AlgorithmSpec] = {}


def common_hparams(dataset: str) -> dict[str, HParam]:
    """lr and weight decay, as DomainBed's registry sets them for small and for full-size images."""
    if dataset in SMALL_IMAGE_DATASETS:
        return {
            "lr": HParam(1e-3, lambda r: float(10 ** r.uniform(-4.5, -2.5))),
            "weight_decay": HParam(0.0, lambda r: 0.0),
        }
    return {
        "lr": HParam(5e-5, lambda r: float(10 ** r.uniform(-5, -3.5))),
        "weight_decay": HParam(0.0, lambda r: float(10 ** r.uniform(-6, -2))),
    }


def register(name: str, hparams: Optional[HParamTable] = None, description: str = "") -> Callable[[type], type]:
    """Class decorator: make an Algorithm subclass available as `algorithm.name: <name>`."""

    def decorate(cls: type) -> type:
        _REGISTRY[name] = AlgorithmSpec(name, cls, hparams or {}, description or (cls.__doc__ or "").strip())
        return cls

    return decorate


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def check_name(name: str) -> None:
    if name not in _BUILTIN and name not in _REGISTRY:
        raise ConfigError(f"algorithm.name: unknown algorithm {name!r}; choose one of: {', '.join(names())}")


def get(name: str) -> AlgorithmSpec:
    check_name(name)
    if name not in _REGISTRY:
        importlib.import_module(_BUILTIN[name])
    return _REGISTRY[name]


def resolve_hparams(name: str, overrides: dict, hparams_seed: int, dataset: str) -> dict[str, Any]:
    """Defaults (hparams_seed 0) or a random-search draw, then the user's overrides on top."""
    table = get(name).table(dataset)
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ConfigError(
            f"algorithm.hparams.{unknown[0]}: not a hyperparameter of {name}; allowed: {', '.join(sorted(table))}"
        )
    values = {
        key: hp.default if hparams_seed == 0 else hp.sample(np.random.RandomState(seed_hash(hparams_seed, key)))
        for key, hp in table.items()
    }
    for key, value in overrides.items():
        values[key] = _like(table[key].default, value, f"algorithm.hparams.{key}")
    return values


def _like(default: Any, value: Any, key: str) -> Any:
    from dagrad.config import coerce_float

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        return coerce_float(value, key)
    return value


def build(cfg: Any, input_shape: tuple[int, ...], num_classes: int, num_domains: int) -> Any:
    """The configured algorithm with its featurizer, ready to train."""
    from dagrad.networks import build_featurizer

    spec = get(cfg.algorithm.name)
    hparams = resolve_hparams(cfg.algorithm.name, cfg.algorithm.hparams, cfg.algorithm.hparams_seed, cfg.data.name)
    featurizer = build_featurizer(cfg.network, input_shape)
    return spec.cls(featurizer, num_classes, num_domains, hparams)
