"""What the server and every client build the same way from one experiment: the data, each client's share
of it, the model, and the seeds. Nothing here talks to Flower.

Every client builds the model with the run's full number of training domains, so all clients' weights have
the same shapes and can be averaged; a client feeds it only its own domains' batches."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from dagrad import datasets
from dagrad.algorithms import ALGORITHMS
from dagrad.algorithms.registry import featurizer_input_shape
from dagrad.config.experiment import Experiment
from dagrad.config.schema import FederatedConfig
from dagrad.datasets.bundle import DataBundle, SplitDataset
from dagrad.federated.partition import by_environment, client_partition
from dagrad.utils.errors import ConfigError
from dagrad.utils.seeding import seed_hash

#: objectives defined across the domains of one batch (alignment, adversaries, risk variance, meta-splits):
#: a client holding one domain cannot use them. An algorithm may also declare `min_domains` itself.
CROSS_DOMAIN = {"coral": 2, "mmd": 2, "dann": 2, "cdann": 2, "dann_grl": 2, "causirl_coral": 2, "causirl_mmd": 2,
                "mldg": 2, "vrex": 2, "fishr": 2, "iga": 2, "andmask": 2, "sandmask": 2, "trm": 2, "selfreg": 2}
PARTS = ("in", "out")


def settings(exp: Experiment) -> FederatedConfig:
    """The experiment's federated block (a ConfigError when the config has none)."""
    fed = exp.cfg.federated
    if fed is None:
        raise ConfigError("this config has no federated: block; `dagrad train` runs it centrally")
    return fed


def check_supported(exp: Experiment) -> None:
    """What the schema cannot see: the setting, averaging and GradSamp combinations a federated run supports."""
    cfg = exp.cfg
    if cfg.data.setting != "dg":
        raise ConfigError("federated: data.setting must be dg (the clients hold no unlabelled target data)")
    if exp.averager is not None:
        raise ConfigError(f"federated: averaging.name={exp.averager.name} is not supported in federated runs; "
                          "allowed: none")
    if exp.gradsamp is not None and exp.gradsamp.guard:
        raise ConfigError("federated: gradsamp.guard is not supported in federated runs; allowed: false")


_DATA: dict[str, DataBundle] = {}  # per run identity: the clients one process serves share one copy


def build_data(exp: Experiment) -> DataBundle:
    """The whole dataset split as a centralised run splits it (every split evaluated); built once per process."""
    key = exp.run_id
    if key not in _DATA:
        _DATA.clear()  # one run's data at a time
        _DATA[key] = datasets.build(exp.data_config(), exp.cfg.trial_seed, "full")
    return _DATA[key]


def client_shares(data: DataBundle, fed: FederatedConfig, seed: int) -> list[dict[str, np.ndarray]]:
    """Per client, {split name: positions into that split}, for the training environments' `in` and `out`
    splits, each spread by FedDG-Benchmark's heterogeneity λ (dagrad.federated.partition)."""
    shares: list[dict[str, np.ndarray]] = [{} for _ in range(fed.clients)]
    for part in PARTS:
        environments = {i: np.arange(len(data.splits[f"env{i}_{part}"])) for i in data.train_envs}
        pairs = client_partition(environments, fed.clients, fed.lambda_, seed_hash(seed, part))
        for client, mine in enumerate(pairs):
            for i, positions in by_environment(mine).items():
                shares[client][f"env{i}_{part}"] = np.sort(np.asarray(positions, dtype=np.int64))
    return shares


def _view(split: SplitDataset, positions: np.ndarray) -> SplitDataset:
    return SplitDataset(split.env, split.indices[positions], split.transform, split.skip_corrupt)


def client_bundle(data: DataBundle, share: dict[str, np.ndarray], client: int) -> DataBundle:
    """The data one client holds: its share of each training domain's `in` and `out` splits."""
    splits = {name: _view(data.splits[name], positions) for name, positions in share.items()}
    envs = [i for i in data.train_envs if len(splits.get(f"env{i}_in", ())) > 0]
    if not envs:
        raise ConfigError(f"federated: client {client} holds no training examples; use fewer clients or a "
                          "larger federated.lambda")
    return dataclasses.replace(data, splits=splits, train_envs=envs, eval_mode="full", guard={})


def held_out_bundle(data: DataBundle) -> DataBundle:
    """The held-out domains' splits, which only the server evaluates."""
    splits = {n: s for n, s in data.splits.items() if int(n[3:n.index("_")]) in data.test_envs}
    return dataclasses.replace(data, splits=splits, eval_mode="full", guard={})


def check_objective(algorithm: str, client: int, domains: int) -> None:
    """A ConfigError naming the client when its domains are too few for the algorithm's objective."""
    need = int(getattr(ALGORITHMS.load(algorithm), "min_domains", CROSS_DOMAIN.get(algorithm, 1)))
    if domains < need:
        raise ConfigError(f"federated: client {client} holds {domains} training domain(s), but algorithm "
                          f"{algorithm} compares at least {need} within a client; raise federated.lambda or use "
                          "fewer clients (or an algorithm such as erm)")


def check_clients(exp: Experiment, data: DataBundle) -> None:
    """Every client holds training examples and enough domains for the algorithm (a ConfigError naming the
    first that does not), checked before any client starts."""
    for client, share in enumerate(client_shares(data, settings(exp), exp.seed)):
        domains = sum(1 for name, positions in share.items() if name.endswith("_in") and len(positions))
        if not domains:
            raise ConfigError(f"federated: client {client} holds no training examples; use fewer clients or a "
                              "larger federated.lambda")
        check_objective(exp.algorithm.name, client, domains)


def build_model(exp: Experiment, data: DataBundle, device: torch.device) -> Any:
    """The run's model, as the centralised engine builds it (the same weights for the same seed state)."""
    featurizer = exp.network.build(input_shape=featurizer_input_shape(exp.algorithm.name, data.input_shape))
    return exp.algorithm.build(featurizer=featurizer, num_classes=data.num_classes,
                               num_domains=len(data.train_envs), input_shape=data.input_shape).to(device)


def client_seed(seed: int, client: int) -> int:
    """A client's own seed (its batches, its GradSamp draws), from the run's seed."""
    return seed_hash("federated.client", int(seed), int(client))


def round_seed(seed: int, round_: int) -> int:
    """The torch seed a client sets before a round's local work (dropout, augmentation)."""
    return seed_hash(int(seed), "round", int(round_))


def local_steps(exp: Experiment, data: DataBundle) -> int:
    """Updates per round on a client: federated.local_steps, else steps_per_epoch, else one pass over the
    client's largest domain."""
    fed = settings(exp)
    return int(fed.local_steps or exp.cfg.steps_per_epoch or data.default_steps_per_epoch())
