"""A configuration checked against the registries: the one floor where component names and options meet.

`resolve(cfg)` checks every component the config names (dataset, network, algorithm, sampler, schedule,
averager, energy backend) and its options against the entry that owns them, draws the hyperparameters,
and returns an `Experiment`: the config as given (what a record header stores, so a run resumes from
its folder alone) and the resolved values a run uses. Nothing is built, loaded or written here.

The experiment's identity (`run_id`) hashes the *canonical* configuration: options with their defaults
filled in, and the settings of a switched-off GradSamp or averager left out, so two spellings of the
same experiment share one identity, and keys that only say where a run executes are left out.

Random search covers what DomainBed's covers: the algorithm's hyperparameters, the backbone's dropout
(DomainBed's `resnet_dropout`) and the batch size, each drawn for (hparams_seed, trial_seed) as
DomainBed's train.py draws them, unless the config sets it. A searched setting appears in the canonical
configuration as `SEARCHED` (the same for every hparams seed, as an algorithm's drawn hyperparameters
are not in it either); the values a run uses are `Experiment.searched` (recorded in the run's header).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from dagrad.algorithms import ALGORITHMS, resolve_hparams
from dagrad.algorithms.registry import batch_size_option, draw
from dagrad.averaging import AVERAGERS
from dagrad.config.schema import RUN_ENVIRONMENT_KEYS, DataConfig, ExperimentConfig, from_dict, stable_hash, \
    to_dict, without_keys
from dagrad.config.files import load_config
from dagrad.datasets import DATASETS, DatasetSpec
from dagrad.datasets.partition import check_da
from dagrad.energy.select import BACKENDS, backend_options
from dagrad.utils.errors import ConfigError
from dagrad.gradsamp.samplers import SAMPLERS, sampler_options
from dagrad.gradsamp.schedules import SCHEDULES
from dagrad.networks import network_entry
from dagrad.plugins import NO_PLUGINS, PluginConsent, import_plugins
from dagrad.utils.seeding import seed_hash

#: the choice that switches GradSamp / averaging off (not a registered component)
OFF = "none"
#: how the canonical configuration writes a setting left to the random search
SEARCHED = "search"


@dataclass
class Experiment:
    """A checked configuration and the values resolved from the registries."""

    cfg: ExperimentConfig
    dataset: DatasetSpec
    data_options: dict
    network_options: dict
    hparams: dict
    sampler_options: dict = field(default_factory=dict)
    schedule_options: dict = field(default_factory=dict)
    averaging_options: dict = field(default_factory=dict)
    energy_backends: dict = field(default_factory=dict)
    #: settings outside the algorithm's hyperparameters that the random search set, by dotted key
    #: (e.g. {"network.options.dropout": 0.1, "data.batch_size": 39}); defaults at hparams_seed 0
    searched: dict = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Examples per training environment per step: the config's, or DomainBed's default or draw."""
        return int(self.searched.get("data.batch_size", self.cfg.data.batch_size))

    def data_config(self) -> DataConfig:
        """The data settings a run builds its data from (the batch size resolved)."""
        return dataclasses.replace(self.cfg.data, batch_size=self.batch_size)

    def canonical(self) -> dict:
        """The configuration as plain data with every option filled in (what identities and reports use)."""
        data = to_dict(self.cfg)
        data["data"]["options"] = copy.deepcopy(self.data_options)
        data["network"]["options"] = copy.deepcopy(self.network_options)
        for key in self.searched:
            section, *path = key.split(".")
            node = data[section]
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = SEARCHED
        if self.cfg.data.protocol != "domainbed":  # the protocol fixes the held-out environments
            data["data"]["test_envs"] = []
        data["energy"]["backends"] = {name: opts for name, opts in self.energy_backends.items()
                                      if name in _backends_used(self.cfg.energy.backend)}
        if self.cfg.gradsamp.sampler == OFF:
            data["gradsamp"] = {"sampler": OFF}
        else:
            data["gradsamp"]["sampler_options"] = copy.deepcopy(self.sampler_options)
            data["gradsamp"]["schedule_options"] = copy.deepcopy(self.schedule_options)
        if self.cfg.averaging.name == OFF:
            data["averaging"] = {"name": OFF}
        else:
            data["averaging"]["options"] = copy.deepcopy(self.averaging_options)
        return data

    @property
    def run_id(self) -> str:
        """The experiment's identity: equal for equal experiments wherever and however they run."""
        return stable_hash(without_keys(self.canonical(), RUN_ENVIRONMENT_KEYS))

    @property
    def seed(self) -> int:
        """The training seed: given, or hashed from the run's identity as DomainBed's sweeps do."""
        c = self.cfg
        if c.seed is not None:
            return c.seed
        test_envs = c.data.test_envs if c.data.protocol == "domainbed" else []
        return seed_hash(c.data.name, c.algorithm.name, test_envs, c.algorithm.hparams_seed, c.trial_seed)


def _backends_used(name: str) -> set[str]:
    """The backends whose options a meter recipe reads (auto and its kin combine three)."""
    return {"nvml", "estimate"} if name in ("auto", "nvml", "rapl") else {name}


def resolve(cfg: ExperimentConfig, plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    """Check `cfg` against every registry it names; a ConfigError names the first problem. The config's
    plugins are imported first, if `plugins` (the user's consent) covers them, else nothing is imported."""
    import_plugins(cfg.plugins, plugins)
    data_entry = DATASETS.get(cfg.data.name)
    spec: DatasetSpec = data_entry.load()
    data_options = data_entry.resolve(cfg.data.options, "data.options")
    if cfg.data.protocol == "domainbed":  # other protocols hold out their own environments
        _check_test_envs(dataclasses.replace(cfg.data, options=data_options), spec)
    _check_data_protocol(cfg.data, spec)
    entry, _ = network_entry(cfg.network.name)
    network_options = entry.resolve(cfg.network.options, "network.options")
    ALGORITHMS.get(cfg.algorithm.name)
    hparams_seed, trial_seed = cfg.algorithm.hparams_seed, cfg.trial_seed
    hparams = resolve_hparams(cfg.algorithm.name, cfg.algorithm.hparams, hparams_seed, spec.small_images,
                              trial_seed=trial_seed, dataset=cfg.data.name)
    searched = {}
    names = entry.info.get("search_names", {})
    for name, option in entry.option_table().items():
        if option.search is not None and name not in (cfg.network.options or {}):
            network_options[name] = draw(option, hparams_seed, names.get(name, name), trial_seed)
            searched[f"network.options.{name}"] = network_options[name]
    if cfg.data.batch_size is None:
        algorithm_cls = ALGORITHMS.load(cfg.algorithm.name)
        own = getattr(algorithm_cls, "full_size_batch_size_option", None)
        if own is not None and not spec.small_images:
            option = own(cfg.data.name)
        else:
            fixed = getattr(algorithm_cls, "full_size_batch_size", None)
            option = batch_size_option(spec.small_images, spec.batch_size_exponents, fixed)
        searched["data.batch_size"] = draw(option, hparams_seed, "batch_size", trial_seed)
    gs = cfg.gradsamp
    sampler_opts, schedule_opts = {}, {}
    if gs.sampler != OFF:
        SAMPLERS.get(gs.sampler)
        sampler_opts = sampler_options(gs.sampler, gs.sampler_options)
        schedule_opts = SCHEDULES.get(gs.schedule).resolve(gs.schedule_options, "gradsamp.schedule_options")
    averaging_opts = {}
    if cfg.averaging.name != OFF:
        averaging_opts = AVERAGERS.get(cfg.averaging.name).resolve(cfg.averaging.options, "averaging.options")
    BACKENDS.get(cfg.energy.backend)
    energy = backend_options(cfg.energy.backends)
    return Experiment(cfg, spec, data_options, network_options, hparams, sampler_opts, schedule_opts,
                      averaging_opts, energy, searched)


def _check_test_envs(data: DataConfig, spec: DatasetSpec) -> None:
    """The test environments exist (where the dataset's environments are known without reading it) and
    leave at least one to train on; `data.options` must be resolved."""
    if not data.test_envs:
        raise ConfigError("data.test_envs: give at least one test environment (the domain to generalize to)")
    if len(set(data.test_envs)) != len(data.test_envs):
        raise ConfigError(f"data.test_envs: {data.test_envs} names an environment twice")
    environments = spec.environments_for(data)
    if environments is not None:
        bad = [i for i in data.test_envs if i >= len(environments)]
        if bad:
            listing = ", ".join(f"{i}={name}" for i, name in enumerate(environments)) or "none"
            raise ConfigError(f"data.test_envs: {bad[0]} is not an environment of {data.name}; "
                              f"environments: {listing}")
        if len(data.test_envs) >= len(environments):
            raise ConfigError("data.test_envs: every environment is held out; leave at least one to train on")


def _check_data_protocol(data: DataConfig, spec: DatasetSpec) -> None:
    """The protocol and DA settings fit together and the dataset supports the protocol."""
    if data.protocol != "domainbed" and data.protocol not in spec.protocols:
        supported = sorted(e.name for e in DATASETS.entries() if data.protocol in e.load().protocols)
        raise ConfigError(f"data.protocol: {data.name} has no {data.protocol} protocol; datasets that have one: "
                          f"{', '.join(supported) or 'none'}")
    check_da(data)


def load_experiment(paths: Any = None, overrides: Optional[list[str]] = None,
                    plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    """Config files merged in order, overrides applied, then checked against the registries."""
    return resolve(load_config(paths, overrides), plugins)


def experiment_from_dict(data: dict, plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    """An experiment from plain config data (a record header's or a job's config.json)."""
    return resolve(from_dict(data), plugins)


def default_run_folder(exp: Experiment, root: str | Path = "runs") -> Path:
    """runs/<name or algorithm-dataset>-<run id>."""
    c = exp.cfg
    return Path(root) / f"{c.name or c.algorithm.name + '-' + c.data.name}-{exp.run_id}"
