"""Which examples of which environment go where: the `in`, `out`, `uda` and guard splits of a run.

- DomainBed's protocol (`data.protocol: domainbed`): every environment split in/out at random as DomainBed
  does (or by the dataset's split files with `data.split: official`); the environments in
  `data.test_envs` are held out. With `data.uda_holdout_fraction` > 0 each test environment's `in` split
  is split again into `uda` (the unlabelled inputs of DA) and the rest, where accuracy is reported.
- A dataset's own protocol (`data.protocol: wilds`): the dataset says which environments train and what
  each split holds (see `ProtocolSplits`); `data.test_envs` is not used.
- The guard slice (GradSamp's guard on): a few examples of each training environment's `in` split, held
  out of training and of every evaluation, for the guard alone.

Transforms follow DomainBed: training environments' `in` splits are augmented (with `data.augment`),
their `out` splits only with `data.val_augment`; everything of a test environment (`in`, `out`, `uda`)
gets the plain transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dagrad.datasets.base import DomainSuite, ProtocolSplits
from dagrad.datasets.splits import domainbed_split, guard_split, uda_split
from dagrad.utils.errors import ConfigError


@dataclass
class Partition:
    """Index arrays by split name (`env{i}_in`, `env{i}_out`, `env{i}_uda`), the guard slices by training
    environment, and which environments train; `augmented` names the splits that get the training
    transform."""

    indices: dict[str, np.ndarray]
    guard: dict[int, np.ndarray]
    train_envs: list[int]
    test_envs: list[int]
    augmented: set[str] = field(default_factory=set)
    protocol: Optional[ProtocolSplits] = None


def check_da(cfg: Any) -> None:
    """The DA settings fit together: DomainBed's DA protocol needs a `uda` split to draw target inputs from."""
    if cfg.da_protocol == "transductive" and cfg.uda_holdout_fraction > 0:
        raise ConfigError("data.uda_holdout_fraction: the transductive DA protocol adapts to and scores on the whole "
                          "`in` split; leave it at 0 (or use data.da_protocol=domainbed)")
    if cfg.setting == "da" and cfg.da_protocol == "domainbed" and cfg.uda_holdout_fraction == 0:
        raise ConfigError("data.uda_holdout_fraction: the DA setting needs unlabelled target inputs; give the share "
                          "of each test environment's `in` split to hold out for them (DomainBed's "
                          "--uda_holdout_fraction, e.g. 0.2), or set data.da_protocol=transductive")


def partition(suite: DomainSuite, cfg: Any, trial_seed: int, guard_per_env: int = 0) -> Partition:
    """The run's splits of `suite` under the data config `cfg` (a DataConfig)."""
    check_da(cfg)
    protocol = _protocol(suite, cfg)
    n_envs = len(suite.environments)
    if protocol is not None:
        train_envs = sorted(protocol.train_envs)
        test_envs = [i for i in range(n_envs) if i not in train_envs]
    else:
        bad = [i for i in cfg.test_envs if not 0 <= i < n_envs]
        if bad:
            listing = ", ".join(f"{i}={name}" for i, name in enumerate(suite.env_names))
            raise ConfigError(f"data.test_envs: {bad[0]} is not an environment of {cfg.name}; environments: {listing}")
        train_envs = [i for i in range(n_envs) if i not in cfg.test_envs]
        test_envs = list(cfg.test_envs)
    if not train_envs:
        raise ConfigError("data.test_envs: every environment is held out; at least one must be left to train on")
    if protocol is None and cfg.split == "official" and suite.official_splits is None:
        raise ConfigError(f"data.split: {cfg.name} has no official split files here; use data.split=random")
    out = Partition({}, {}, train_envs, test_envs, protocol=protocol)
    for i, env in enumerate(suite.environments):
        if protocol is not None:
            in_idx, out_idx = (np.asarray(a, dtype=np.int64) for a in protocol.splits[i])
        elif cfg.split == "official":
            in_idx, out_idx = suite.official_splits[i]
        else:
            in_idx, out_idx = domainbed_split(len(env), cfg.holdout_fraction, trial_seed, i)
        training = i in train_envs
        if not training and cfg.uda_holdout_fraction > 0:
            in_idx, uda_idx = uda_split(np.asarray(in_idx), cfg.uda_holdout_fraction, trial_seed, i)
            out.indices[f"env{i}_uda"] = uda_idx
        if training and guard_per_env:
            if len(in_idx) <= guard_per_env:
                raise ConfigError(f"gradsamp.guard: environment {i} ({env.name}) has {len(in_idx)} training examples, "
                                  f"too few to hold out {guard_per_env} for the guard")
            in_idx, out.guard[i] = guard_split(np.sort(in_idx), guard_per_env, trial_seed, i)
        out.indices[f"env{i}_in"] = np.sort(np.asarray(in_idx, dtype=np.int64))
        if len(out_idx) or protocol is None:  # under a dataset's protocol an environment may have no `out`
            out.indices[f"env{i}_out"] = np.sort(np.asarray(out_idx, dtype=np.int64))
        if training and cfg.augment:
            out.augmented.add(f"env{i}_in")
            if cfg.val_augment:
                out.augmented.add(f"env{i}_out")
    return out


def _protocol(suite: DomainSuite, cfg: Any) -> Optional[ProtocolSplits]:
    name = getattr(cfg, "protocol", "domainbed")
    if name == "domainbed":
        return None
    if name not in suite.protocols:
        raise ConfigError(f"data.protocol: {cfg.name} has no {name} protocol (it supports: "
                          f"{', '.join(['domainbed', *suite.protocols])})")
    return suite.protocols[name]


def describe(part: Partition, cfg: Any, trial_seed: int, guard_per_env: int) -> dict:
    """What the header records about the splits: sizes, the DA split and the guard slice."""
    info: dict[str, Any] = {"protocol": getattr(cfg, "protocol", "domainbed"),
                            "split_sizes": {name: int(len(idx)) for name, idx in part.indices.items()}}
    if cfg.uda_holdout_fraction > 0:
        info["uda"] = {"holdout_fraction": cfg.uda_holdout_fraction, "trial_seed": trial_seed,
                       "seed": "seed_hash(trial_seed, env) on DomainBed's shuffled `in` split"}
    if part.guard:
        info["guard"] = {"per_env": guard_per_env, "trial_seed": trial_seed,
                         "seed": "seed_hash(trial_seed, env, 'guard')",
                         "sizes": {f"env{i}": int(len(idx)) for i, idx in sorted(part.guard.items())}}
    if part.protocol is not None:
        info["protocol_metrics"] = part.protocol.metrics
    return info
