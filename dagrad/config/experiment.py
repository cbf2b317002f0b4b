"""A configuration checked against the registries: the one floor where component names and options meet.

`resolve(cfg)` checks every component the config names (dataset, network, algorithm, sampler, schedule,
averager, energy backend) and its options against the entry that owns them, draws the hyperparameters,
and returns an `Experiment`: the config as given (what a record header stores, so a run resumes from
its folder alone) and each component resolved once, as its registry entry with checked options (a
`Resolved`; None for one that is off). A run builds every part from these and never reads the config's
component sections again (dagrad.run.parts). Nothing is built or written here.

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
from dagrad.config.schema import FEDGA_KEYS, OFF, RUN_ENVIRONMENT_KEYS, DataConfig, ExperimentConfig, from_dict, \
    stable_hash, to_dict, without_keys
from dagrad.config.files import load_config
from dagrad.datasets import DATASETS, DatasetSpec
from dagrad.datasets.partition import check_da
from dagrad.energy.select import EnergySettings, resolve_energy
from dagrad.utils.errors import ConfigError
from dagrad.gradsamp.settings import Settings, resolve_settings
from dagrad.networks import resolve_network
from dagrad.plugins import NO_PLUGINS, PluginConsent, import_plugins
from dagrad.registry import Resolved
from dagrad.run.numerics import Numerics
from dagrad.utils.seeding import seed_hash

#: how the canonical configuration writes a setting left to the random search
SEARCHED = "search"


@dataclass
class Experiment:
    """A checked configuration and every component resolved from its registry, once: what a run builds
    from (each `Resolved` is its registry entry and checked options; see `Resolved.build`). A component
    that is off is None. `cfg` is the configuration as given, which a record header stores; builders never
    read it for a component's settings."""

    cfg: ExperimentConfig
    dataset: Resolved  # the dataset's entry (a DatasetSpec) and data.options
    network: Resolved  # the featurizer's entry and network.options (a family member fixed: timm's model)
    algorithm: Resolved  # the algorithm's entry and its hyperparameters (drawn when searched)
    gradsamp: Optional[Settings]  # sampler, schedule and switches; None: GradSamp off
    averager: Optional[Resolved]  # averaging.name's entry and averaging.options; None: no averaging
    energy: EnergySettings  # the energy backend's recipe with every backend's options
    numerics: Numerics  # precision, determinism, layout (placed on the run's device when it starts)
    #: settings outside the algorithm's hyperparameters that the random search set, by dotted key
    #: (e.g. {"network.options.dropout": 0.1, "data.batch_size": 39}); defaults at hparams_seed 0
    searched: dict = field(default_factory=dict)

    @property
    def spec(self) -> DatasetSpec:
        """The dataset's spec (its builder, environments, protocols)."""
        return self.dataset.entry.load()

    @property
    def hparams(self) -> dict:
        """The algorithm's hyperparameters, resolved."""
        return self.algorithm.options

    @property
    def batch_size(self) -> int:
        """Examples per training environment per step: the config's, or DomainBed's default or draw."""
        return int(self.searched.get("data.batch_size", self.cfg.data.batch_size))

    def data_config(self) -> DataConfig:
        """The data settings a run builds its data from (the batch size and the dataset's options resolved)."""
        return dataclasses.replace(self.cfg.data, batch_size=self.batch_size, options=dict(self.dataset.options))

    def canonical(self) -> dict:
        """The configuration as plain data with every option filled in (what identities and reports use)."""
        data = to_dict(self.cfg)
        data["data"]["options"] = copy.deepcopy(self.dataset.options)
        data["network"]["options"] = copy.deepcopy(self.network.options)
        for key in self.searched:
            section, *path = key.split(".")
            node = data[section]
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = SEARCHED
        if self.cfg.data.protocol != "domainbed":  # the protocol fixes the held-out environments
            data["data"]["test_envs"] = []
        data["energy"]["backends"] = copy.deepcopy(self.energy.combined_options())
        if self.gradsamp is None:
            data["gradsamp"] = {"sampler": OFF}
        else:
            data["gradsamp"]["sampler_options"] = copy.deepcopy(self.gradsamp.sampler.options)
            data["gradsamp"]["schedule_options"] = copy.deepcopy(self.gradsamp.schedule.options)
        if self.averager is None:
            data["averaging"] = {"name": OFF}
        else:
            data["averaging"]["options"] = copy.deepcopy(self.averager.options)
        if "federated" in data and data["federated"]["strategy"] != "fedga":  # FedDG-GA's settings unused
            for key in FEDGA_KEYS:
                data["federated"].pop(key, None)
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


def resolve(cfg: ExperimentConfig, plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    """Check `cfg` against every registry it names; a ConfigError names the first problem. The config's
    plugins are imported first, if `plugins` (the user's consent) covers them, else nothing is imported."""
    import_plugins(cfg.plugins, plugins)
    dataset = DATASETS.resolve(cfg.data.name, cfg.data.options)
    spec: DatasetSpec = dataset.entry.load()
    if cfg.data.protocol == "domainbed":  # other protocols hold out their own environments
        _check_test_envs(dataclasses.replace(cfg.data, options=dataset.options), spec)
    _check_data_protocol(cfg.data, spec)
    network = resolve_network(cfg.network.name, cfg.network.options)
    algorithm_entry = ALGORITHMS.get(cfg.algorithm.name)
    hparams_seed, trial_seed = cfg.algorithm.hparams_seed, cfg.trial_seed
    hparams = resolve_hparams(cfg.algorithm.name, cfg.algorithm.hparams, hparams_seed, spec.small_images,
                              trial_seed=trial_seed, dataset=cfg.data.name)
    searched = _search_network(network, cfg, hparams_seed, trial_seed)
    if cfg.data.batch_size is None:
        searched["data.batch_size"] = draw(_batch_size_option(algorithm_entry.load(), spec, cfg.data.name),
                                           hparams_seed, "batch_size", trial_seed)
    gradsamp = resolve_settings(cfg.gradsamp)
    averager = None if cfg.averaging.name == OFF else AVERAGERS.resolve(cfg.averaging.name, cfg.averaging.options)
    numerics = Numerics(None, cfg.precision, cfg.deterministic, cfg.channels_last)
    return Experiment(cfg, dataset, network, Resolved(algorithm_entry, hparams), gradsamp, averager,
                      resolve_energy(cfg.energy), numerics, searched)


def _search_network(network: Resolved, cfg: ExperimentConfig, hparams_seed: int, trial_seed: int) -> dict:
    """Draw the network options the random search covers and the config leaves open (into `network`);
    returns them by dotted key."""
    searched = {}
    names = network.entry.info.get("search_names", {})
    for name, option in network.entry.option_table().items():
        if option.search is not None and name not in (cfg.network.options or {}):
            network.options[name] = draw(option, hparams_seed, names.get(name, name), trial_seed)
            searched[f"network.options.{name}"] = network.options[name]
    return searched


def _batch_size_option(algorithm_cls: Any, spec: DatasetSpec, dataset: str) -> Any:
    """The batch size's search option: the algorithm's own for full-size images, else DomainBed's."""
    own = getattr(algorithm_cls, "full_size_batch_size_option", None)
    if own is not None and not spec.small_images:
        return own(dataset)
    fixed = getattr(algorithm_cls, "full_size_batch_size", None)
    return batch_size_option(spec.small_images, spec.batch_size_exponents, fixed)


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
