"""Experiment configuration: YAML files -> validated dataclasses.

A YAML file may `include:` other files (paths relative to it); they are merged first, in order, and the
file's own keys go on top. Command-line `key=value` overrides (dotted keys, YAML values) go last.
Every unknown key, wrong type or disallowed value is a ConfigError naming the key and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from dagrad.errors import ConfigError


def _choice(default: Any, *allowed: Any) -> Any:
    return field(default=default, metadata={"choices": allowed})


@dataclass
class DataConfig:
    """Which dataset, which environments are held out, and how batches are drawn."""

    name: str = "rotated_digits"
    root: Optional[str] = None  # where real datasets live; embedded ones ignore it
    test_envs: list[int] = field(default_factory=lambda: [5])
    setting: str = _choice("dg", "dg", "da")  # da: the test envs' `in` inputs are given unlabelled
    holdout_fraction: float = 0.2  # DomainBed: 20 % of every environment is its `out` split
    split: str = _choice("random", "random", "official")  # official: the dataset's own split files
    image_size: Optional[int] = None  # None: the dataset's default
    batch_size: int = 32  # per training environment, as DomainBed
    eval_batch_size: int = 256
    num_workers: int = 0
    augment: bool = True
    val_augment: bool = False  # True matches DomainBed (augmented validation); False matches SWAD
    skip_corrupt: bool = False  # skip unreadable images (counted in the record) instead of failing
    options: dict = field(default_factory=dict)  # dataset-specific settings, checked by the dataset


@dataclass
class NetworkConfig:
    """The featurizer; the classifier head is always linear (as DomainBed's default)."""

    name: str = "digits_cnn"  # digits_cnn | resnet18 | resnet50 | timm:<model name>
    width: int = 32  # channels of digits_cnn
    pretrained: Optional[str] = None  # None, "imagenet" (torchvision/timm cache), or a weights file
    freeze_bn: bool = True  # BatchNorm statistics frozen, affine trainable (DomainBed 2020, SWAD)
    dropout: float = 0.0


@dataclass
class AlgorithmConfig:
    name: str = "erm"
    hparams: dict = field(default_factory=dict)  # overrides of the registry's defaults
    hparams_seed: int = 0  # 0: defaults; otherwise DomainBed-style random search draw


@dataclass
class GradSampConfig:
    """Which epochs are sampled instead of trained, and how (see dagrad.gradsamp)."""

    sampler: str = _choice("none", "none", "tensor", "element", "ggd", "extrapolate", "skip")
    scale: float = 1.0
    element_c: float = 0.5
    ggd_beta: Optional[float] = None  # None: fitted by moment matching
    schedule: str = _choice("periodic", "periodic", "random", "epochs")
    every: int = 3
    start: int = 2
    probability: float = 0.3
    epochs: list[int] = field(default_factory=list)
    max_consecutive: Optional[int] = None
    buffers: str = _choice("keep", "keep", "extrapolate")
    optimizer_state: str = _choice("keep", "keep", "reset")
    guard: bool = False
    guard_tolerance: float = 0.05
    guard_fallback: str = _choice("train", "train", "keep")


@dataclass
class EnergyConfig:
    backend: str = _choice("auto", "auto", "nvml", "rapl", "estimate", "zeus", "codecarbon")
    watts_per_thread: float = 4.0  # CodeCarbon's default for an unknown CPU
    cpu_tdp_w: Optional[float] = None
    grid_intensity_g_per_kwh: Optional[float] = None
    nvml_poll_hz: float = 10.0
    count_flops: bool = True


@dataclass
class AveragingConfig:
    """Weight averaging that wraps any algorithm; `swad` is SWAD's dense averaging + loss valley."""

    name: str = _choice("none", "none", "swad")
    n_converge: int = 3
    n_tolerance: int = 6
    tolerance_ratio: float = 0.3
    early_stop: bool = True  # SWAD stops training when the loss valley ends


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    gradsamp: GradSampConfig = field(default_factory=GradSampConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)
    epochs: int = 10
    steps_per_epoch: Optional[int] = None  # None: one pass over the largest training environment
    trial_seed: int = 0  # drives the data split (DomainBed's trial_seed)
    seed: Optional[int] = None  # training randomness; None: hashed from the run's identity
    device: str = _choice("auto", "auto", "cpu", "cuda")  # auto: cuda when available, as DomainBed
    eval_mode: str = _choice("full", "full", "fast")  # fast skips training envs' `in` splits (SWAD)
    plugins: list[str] = field(default_factory=list)  # modules or .py files registering algorithms/datasets
    name: Optional[str] = None


def to_dict(cfg: Any) -> dict:
    """The configuration as plain data (what the record header stores)."""
    return dataclasses.asdict(cfg)


#: keys that say where or how fast a run executes, not what it computes: left out of its identity, so a
#: sweep relaunched on another machine (another data root, device or worker count) finds its finished jobs
RUN_ENVIRONMENT_KEYS = ("name", "device", "data.root", "data.num_workers")


def config_hash(cfg: ExperimentConfig) -> str:
    """A short stable identity of everything that determines the run's result."""
    data = to_dict(cfg)
    for key in RUN_ENVIRONMENT_KEYS:
        *path, last = key.split(".")
        node = data
        for part in path:
            node = node[part]
        node.pop(last)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def from_dict(data: dict, cls: type = ExperimentConfig, prefix: str = "") -> Any:
    """Build a dataclass from plain data, naming the key of the first problem found."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key '{prefix}{unknown[0]}'; allowed keys"
            f"{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(known)}"
        )
    values = {}
    for name, value in data.items():
        key, typ = prefix + name, hints[name]
        if dataclasses.is_dataclass(typ):
            values[name] = from_dict(value, typ, key + ".")
            continue
        value = _coerce(value, typ, key)
        choices = known[name].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of: {', '.join(choices)}")
        values[name] = value
    return cls(**values)


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing (null)"


def _coerce(value: Any, typ: Any, key: str) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        if not isinstance(value, list):
            value = [value] if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_kind(value)}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if typ is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_kind(value)}")
        return copy.deepcopy(value)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if typ is float:
        return coerce_float(value, key)
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {typ}")  # pragma: no cover - schema bug


def coerce_float(value: Any, key: str) -> float:
    """A float from a number or a numeric string (PyYAML reads `1e-4` as a string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected a number, got {value!r}")


def read_yaml(path: str | Path, _seen: tuple = ()) -> dict:
    """A YAML file with its `include:` files merged underneath it."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: includes itself (through {' -> '.join(p.name for p in _seen)})")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {_kind(data)}")
    includes = data.pop("include", []) or []
    merged: dict = {}
    for inc in [includes] if isinstance(includes, str) else includes:
        merged = deep_merge(merged, read_yaml(path.parent / inc, _seen + (path,)))
    return deep_merge(merged, data)


def deep_merge(base: dict, top: dict) -> dict:
    """Mappings merged key by key; anything else in `top` replaces what is in `base`."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (`x=[1,2]`, `y=null`, `z=true`)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. algorithm.name=coral)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node[parts[-1]] = value
    return out


def load_config(paths: list[str] | str | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Files merged in order, overrides applied, then validated (names checked against the registries)."""
    data: dict = {}
    for path in [paths] if isinstance(paths, (str, Path)) else (paths or []):
        data = deep_merge(data, read_yaml(path))
    cfg = from_dict(apply_overrides(data, overrides or []))
    validate(cfg)
    return cfg


def validate(cfg: ExperimentConfig) -> None:
    """Checks that need more than one key, or the registries of algorithms, datasets and networks."""
    from dagrad.algorithms import registry as algorithms
    from dagrad.datasets import registry as datasets
    from dagrad.networks import check_network_name
    from dagrad.plugins import import_plugins

    import_plugins(cfg.plugins)
    algorithms.check_name(cfg.algorithm.name)
    algorithms.resolve_hparams(cfg.algorithm.name, cfg.algorithm.hparams, cfg.algorithm.hparams_seed,
                               dataset=cfg.data.name)
    datasets.check_name(cfg.data.name)
    check_network_name(cfg.network.name)
    _positive(cfg, ["epochs", "data.batch_size", "data.eval_batch_size", "network.width"])
    if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
        raise ConfigError(f"steps_per_epoch: must be at least 1 (or null for one pass), got {cfg.steps_per_epoch}")
    if not 0.0 < cfg.data.holdout_fraction < 1.0:
        raise ConfigError(f"data.holdout_fraction: must be between 0 and 1, got {cfg.data.holdout_fraction}")
    if not cfg.data.test_envs and cfg.data.setting == "da":
        raise ConfigError("data.test_envs: the da setting needs at least one test environment")
    gs = cfg.gradsamp
    if gs.every < 1 or gs.start < 0:
        raise ConfigError(f"gradsamp.every must be >= 1 and gradsamp.start >= 0, got {gs.every} and {gs.start}")
    if not 0.0 <= gs.probability <= 1.0:
        raise ConfigError(f"gradsamp.probability: must be in [0, 1], got {gs.probability}")


def _positive(cfg: ExperimentConfig, keys: list[str]) -> None:
    for key in keys:
        node: Any = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if node < 1:
            raise ConfigError(f"{key}: must be at least 1, got {node}")
