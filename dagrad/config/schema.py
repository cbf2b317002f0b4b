"""Experiment configuration's schema: every section and key, its type and its limits, and the checks that
turn a plain mapping into an `ExperimentConfig` (reading YAML files is `dagrad.config.files`). Every
unknown key, wrong type or out-of-range value is a ConfigError naming the key and what is allowed.

The names of components (dataset, network, algorithm, sampler, schedule, averager, energy backend) and
their options are checked one floor up, against the registries, in `dagrad.config.experiment`: this module
imports no registry, so each choice is declared once, by the component that owns it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from dagrad.utils.errors import ConfigError, clip
from dagrad.registry import Option
from dagrad.run.numerics import PRECISIONS


def _setting(default: Any, typ: type, **limits: Any) -> Any:
    """A schema field with its valid values declared next to its default."""
    option = Option(default, typ, **limits)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"option": option})
    return field(default=default, metadata={"option": option})


#: the choice that switches an optional component off (GradSamp's sampler, the averager); a run's
#: Experiment holds None for it
OFF = "none"

#: the largest batch per environment a config may ask for (DomainBed's search tops out at 512)
BATCH_SIZE_MAX = 16384


@dataclass
class DataConfig:
    """Which dataset, which environments are held out, and how batches are drawn."""

    name: str = "rotated_digits"  # a registered dataset (`dagrad data list`)
    root: Optional[str] = None  # where real datasets live; embedded ones ignore it
    test_envs: list[int] = _setting([5], list, item=int, low=0)
    setting: str = _setting("dg", str, choices=("dg", "da"))  # da: the test envs' inputs are given unlabelled
    # at most half: the held-out `out` splits give model selection and the OOD figures their examples
    holdout_fraction: float = _setting(0.2, float, low=0.0, high=0.5, low_open=True)
    # DomainBed's --uda_holdout_fraction: this fraction of each test env's `in` split becomes its `uda`
    # split (the unlabelled inputs of the DA setting); accuracy is reported on the rest. Also carved in DG
    # runs when > 0, so DG and DA runs score on the same examples, as in DomainBed
    uda_holdout_fraction: float = _setting(0.0, float, low=0.0, high=1.0, high_open=True)
    # domainbed: adapt to the `uda` split, score on the disjoint rest; transductive: adapt to and score on
    # the whole `in` split (Dassl, TLlib)
    da_protocol: str = _setting("domainbed", str, choices=("domainbed", "transductive"))
    # domainbed: environments split in/out at random (or by data.split); wilds: WILDS's own splits and
    # held-out domains (wilds_camelyon17, wilds_fmow, wilds_domain_net), data.test_envs and data.split unused
    protocol: str = _setting("domainbed", str, choices=("domainbed", "wilds"))
    split: str = _setting("random", str, choices=("random", "official"))  # official: the dataset's split files
    image_size: Optional[int] = _setting(None, int, low=8, nullable=True)  # None: the dataset's default
    # per training environment; None: DomainBed's default (32; 64 on small-image datasets) at hparams_seed
    # 0, else drawn by the random search as DomainBed's `batch_size` hyperparameter
    batch_size: Optional[int] = _setting(None, int, low=1, high=BATCH_SIZE_MAX, nullable=True)
    eval_batch_size: int = _setting(64, int, low=1)  # DomainBed's; small enough to keep every worker busy
    num_workers: int = _setting(0, int, low=0)
    augment: bool = True
    val_augment: bool = False  # True matches DomainBed (augmented validation); False matches SWAD
    skip_corrupt: bool = False  # skip unreadable images (counted in the record) instead of failing
    options: dict = field(default_factory=dict)  # the dataset's own options (see `dagrad data list`)


@dataclass
class NetworkConfig:
    """The featurizer (the classifier head is always linear, as DomainBed's default)."""

    name: str = "digits_cnn"  # a registered network, or timm:<model name>
    options: dict = field(default_factory=dict)  # the network's own options (see `dagrad list`)


@dataclass
class AlgorithmConfig:
    name: str = "erm"
    hparams: dict = field(default_factory=dict)  # overrides of the algorithm's defaults
    hparams_seed: int = _setting(0, int, low=0)  # 0: defaults; otherwise DomainBed-style random search


@dataclass
class GradSampConfig:
    """Which epochs are sampled instead of trained, and how (see dagrad.gradsamp)."""

    sampler: str = OFF  # none (GradSamp off) or a registered sampler; `skip` is the control
    sampler_options: dict = field(default_factory=dict)  # the sampler's own options, e.g. {scale: 0.5}
    schedule: str = "periodic"  # a registered schedule
    schedule_options: dict = field(default_factory=dict)  # the schedule's own options, e.g. {every: 3}
    max_consecutive: Optional[int] = _setting(None, int, low=1, nullable=True)
    buffers: str = _setting("keep", str, choices=("keep", "extrapolate"))
    optimizer_state: str = _setting("keep", str, choices=("keep", "reset"))
    guard: bool = False
    guard_tolerance: float = _setting(0.05, float, low=0.0)
    guard_fallback: str = _setting("train", str, choices=("train", "keep"))
    history_device: str = _setting("device", str, choices=("device", "cpu"))  # cpu: pinned host memory


@dataclass
class EnergyConfig:
    backend: str = "auto"  # a registered backend; auto = NVML for GPUs, RAPL or the estimate for the CPU
    backends: dict = field(default_factory=dict)  # per-backend options, e.g. {estimate: {watts_per_thread: 4}}
    grid_intensity_g_per_kwh: Optional[float] = _setting(None, float, low=0.0, nullable=True)
    count_flops: bool = True
    # > 0: measure idle power once per job for this many seconds (stored in the header), so reports can
    # show dynamic energy (gross - idle power x seconds) beside gross energy; 0: off
    idle_baseline_s: float = _setting(0.0, float, low=0.0)


@dataclass
class AveragingConfig:
    """Weight averaging that wraps any algorithm; `swad` is SWAD's dense averaging + loss valley."""

    name: str = OFF  # none or a registered averager
    options: dict = field(default_factory=dict)  # the averager's own options


@dataclass
class WandbConfig:
    """Weights & Biases: on when `project` is set. Offline by default (cluster nodes often have no
    internet; `wandb sync` uploads later)."""

    project: Optional[str] = None  # the W&B project to log to; None: W&B off
    mode: str = _setting("offline", str, choices=("offline", "online"))
    entity: Optional[str] = None  # the W&B team or user; None: W&B's default


@dataclass
class TrackingConfig:
    """Mirrors of the records for the trackers researchers already use (`pip install dagrad[tracking]`).

    They show the same numbers as the records, which stay the source of truth; only rank 0 writes."""

    tensorboard: bool = False  # event files in <run folder>/tensorboard
    wandb: WandbConfig = field(default_factory=WandbConfig)  # files in <run folder>/wandb


#: what `checkpoints.keep` may name: the last epoch's model, the epoch training-domain validation selects
#: within the run, SWAD's average (when SWAD runs), every epoch's model
KEEP_CHOICES = ("last", "best", "swad", "every")


@dataclass
class CheckpointsConfig:
    """Which trained models a run keeps beside its records (weights only; see dagrad.models)."""

    keep: list[str] = _setting(["last", "best", "swad"], list, item=str, choices=KEEP_CHOICES)


@dataclass
class EvalConfig:
    """What each epoch's evaluation writes besides the records."""

    save_predictions: bool = False  # per example: index, label, predicted class, probability of the label


#: the strategies a federated run may use (how the server aggregates; dagrad.federated.server). FedSR is a
#: client objective, not a strategy: `algorithm.name: fedsr` with any of them (fedavg: FedSR as published)
FEDERATED_STRATEGIES = ("fedavg", "fedprox", "fedga")

#: the FedDG-GA settings, part of a run's identity only when federated.strategy is fedga
FEDGA_KEYS = ("ga_step_size", "ga_metric")


@dataclass
class FederatedConfig:
    """Federated DG on Flower (dagrad.federated): the training environments spread over `clients` by
    FedDG-Benchmark's heterogeneity λ; `epochs` counts rounds, each of `local_steps` updates per sampled
    client. GradSamp (the `gradsamp:` block) runs on the clients' own models or on the server's global
    ones (`gradsamp_side`). Off unless the config has a `federated:` block."""

    clients: int = _setting(5, int, low=1, high=10000)
    # FedDG-Benchmark's λ: 0 spreads each domain over its own clients only, 1 gives every client an even mix
    lambda_: float = field(default=0.5, metadata={"option": Option(0.5, float, low=0.0, high=1.0), "key": "lambda"})
    fraction: float = _setting(1.0, float, low=0.0, high=1.0, low_open=True)  # clients sampled per round
    local_steps: Optional[int] = _setting(None, int, low=1, nullable=True)  # None: steps_per_epoch or one pass
    strategy: str = _setting("fedavg", str, choices=FEDERATED_STRATEGIES)
    mu: float = _setting(0.01, float, low=0.0)  # FedProx's proximal weight (fedprox only)
    # FedDG-GA (fedga only): the step d of the aggregation weights (decaying linearly over the rounds), and
    # the generalisation gap's metric on each client's validation split (the reference code's --step_size
    # and --fair, with its defaults; the paper writes the gap with the loss)
    ga_step_size: float = _setting(0.2, float, low=0.0, high=1.0)
    ga_metric: str = _setting("accuracy", str, choices=("accuracy", "loss"))
    gradsamp_side: str = _setting("client", str, choices=("client", "server"))
    client_optimizer: str = _setting("keep", str, choices=("keep", "reset"))  # a client's optimizer state across rounds
    # simulation: Flower's simulation runtime (Ray workers); inprocess: the same apps' messages delivered by
    # calls in the training process, clients one after another (no Ray start-up: small runs, many of them on
    # one machine); deployment: a SuperLink and SuperNodes started with Flower's commands
    runtime: str = _setting("simulation", str, choices=("simulation", "inprocess", "deployment"))
    # the simulation runtime's Ray workers: CPUs per client (at most this many clients run at once on the machine)
    cpus_per_client: int = _setting(1, int, low=1)


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    gradsamp: GradSampConfig = field(default_factory=GradSampConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    federated: Optional[FederatedConfig] = None  # None: one centralised run (dagrad.run.engine)
    epochs: int = _setting(10, int, low=1)
    steps_per_epoch: Optional[int] = _setting(None, int, low=1, nullable=True)  # None: one pass over the data
    trial_seed: int = _setting(0, int, low=0)  # drives the data split (DomainBed's trial_seed)
    seed: Optional[int] = _setting(None, int, low=0, nullable=True)  # None: hashed from the run's identity
    device: str = _setting("auto", str, choices=("auto", "cpu", "cuda"))  # auto: cuda when available
    # torch_default: PyTorch's defaults, DomainBed's numerics (float32 matmuls; cuDNN convolutions may use
    # TF32 on Ampere+); fp32_strict: no TF32 anywhere; tf32: TF32 matmuls and convolutions; bf16: autocast
    # to bfloat16 with float32 parameters, optimizer state and GradSamp (see dagrad/run/numerics.py)
    precision: str = _setting("torch_default", str, choices=tuple(PRECISIONS))
    deterministic: bool = True  # as DomainBed: deterministic cuDNN; false lets cudnn.benchmark autotune
    channels_last: bool = False  # NHWC weights and inputs for convolutional backbones (faster on tensor cores)
    eval_mode: str = _setting("full", str, choices=("full", "fast"))  # fast skips training envs' `in` (SWAD)
    plugins: list[str] = field(default_factory=list)  # modules or .py files registering components
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if self.name is not None:
            check_name(self.name, "name")


#: the longest run or sweep name: it becomes a folder name and is stored in every record header
NAME_MAX = 100


def check_name(value: Any, key: str) -> str:
    """A run or sweep name: one folder name (no '/', not '.' or '..', printable), at most NAME_MAX characters."""
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a name (a string), got {_kind(value)}")
    if len(value) > NAME_MAX:
        raise ConfigError(f"{key}: a name of {len(value)} characters; allowed: at most {NAME_MAX} (it becomes a "
                          "folder name)")
    if not value or value in (".", "..") or any(c in value for c in "/\\") or not value.isprintable():
        raise ConfigError(f"{key}: {value!r} is not one folder name; allowed: a name without '/', '\\' or control "
                          "characters, other than '.' and '..' (runs stay inside their runs folder)")
    return value


#: keys that say where or how fast a run executes, not what it computes: left out of its identity (so a
#: sweep relaunched elsewhere finds its finished jobs) and out of the configuration a report groups by
RUN_ENVIRONMENT_KEYS = ("name", "device", "data.root", "data.num_workers", "data.eval_batch_size", "deterministic",
                        "channels_last", "energy.idle_baseline_s", "tracking", "checkpoints", "eval",
                        "federated.runtime", "federated.cpus_per_client")


def to_dict(cfg: Any) -> dict:
    """The configuration as plain data (what the record header stores), each key as a config file spells
    it; an absent optional section (`federated: null`) is left out, so configs without it are unchanged."""
    data = dataclasses.asdict(cfg)
    _spell_keys(cfg, data)
    return data


def _spell_keys(cfg: Any, data: dict) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None and _section_type(hints[f.name]) is not None:
            data.pop(f.name, None)
        elif dataclasses.is_dataclass(value):
            _spell_keys(value, data[f.name])
        key = f.metadata.get("key")
        if key and f.name in data:
            data[key] = data.pop(f.name)


def without_keys(data: dict, keys: tuple[str, ...]) -> dict:
    """A deep copy of `data` without the dotted `keys` (missing ones are ignored)."""
    out = copy.deepcopy(data)
    for key in keys:
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def stable_hash(data: Any, length: int = 12) -> str:
    """A short hash of plain data that does not depend on key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:length]


def from_dict(data: dict, cls: type = ExperimentConfig, prefix: str = "") -> Any:
    """Build a dataclass from plain data, naming the key of the first problem found."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ConfigError(
            f"unknown key {clip(prefix + str(unknown[0]))}; allowed keys"
            f"{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(known)}"
        )
    values = {}
    for name, value in data.items():
        attr = known[name].name
        key, typ = prefix + name, hints[attr]
        section = _section_type(typ)
        if section is not None:
            values[attr] = None if value is None and section is not typ else from_dict(value, section, key + ".")
            continue
        option = known[name].metadata.get("option")
        values[attr] = option.check(value, key) if option else _coerce(value, typ, key)
    return cls(**values)


def _section_type(typ: Any) -> Optional[type]:
    """The dataclass of a section (`X` or `Optional[X]`), or None for a plain key."""
    if dataclasses.is_dataclass(typ):
        return typ
    found = [a for a in typing.get_args(typ) if dataclasses.is_dataclass(a)]
    return found[0] if found else None


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing (null)"


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Plain type checks for fields without declared limits (strings, flags, mappings)."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_kind(value)}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if typ is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_kind(value)}")
        return copy.deepcopy(value)
    return Option(None, typ).check(value, key)
