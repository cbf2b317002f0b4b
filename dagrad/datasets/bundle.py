"""A dataset made ready for one run: environments split into `in`/`out` (and `uda`, and the guard's
slice; see partition.py), per-split transforms, and the loaders the engine draws from. Training batches
follow DomainBed: one minibatch per training environment per step, sampled with replacement; here the
draw is seeded by (seed, epoch, environment), so a resumed run sees exactly the batches an uninterrupted
one would. In the DA setting the unlabelled target batches come from each test environment's `uda`
split (DomainBed) or its whole `in` split (transductive), and only for algorithms that use them."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from dagrad.datasets.base import DomainSuite, Environment, Transform
from dagrad.datasets.loading import EvalLoader, make_loader
from dagrad.datasets.partition import Partition, describe, partition
from dagrad.datasets.specs import build_suite, dataset_spec
from dagrad.registry import Resolved
from dagrad.utils.errors import ConfigError, DataError
from dagrad.utils.seeding import generator


class SplitDataset(Dataset):
    """Some examples of one environment, with one transform. Unreadable inputs raise a DataError naming
    the file, or (with skip_corrupt) come back as None and are dropped and counted by `collate`."""

    def __init__(self, env: Environment, indices: np.ndarray, transform: Optional[Transform], skip_corrupt: bool):
        self.env, self.indices, self.transform, self.skip_corrupt = env, indices, transform, skip_corrupt

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Any:
        index = int(self.indices[k])
        try:
            x = self.env.load(index)
            if self.transform is not None:
                x = self.transform(x)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for broken files
            if self.skip_corrupt:
                warnings.warn(f"skipping unreadable example {self.env.describe(index)}: {exc}")
                return None
            raise DataError(f"unreadable example {self.env.describe(index)}: {exc} "
                            f"(set data.skip_corrupt=true to skip and count such files)") from None
        return x, int(self.env.labels[index])

    @property
    def labels(self) -> np.ndarray:
        return self.env.labels[self.indices]


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the readable examples; the third element counts the skipped ones."""
    kept = [item for item in items if item is not None]
    if not kept:
        raise DataError("a whole batch was unreadable; check the dataset with `dagrad data check`")
    x, y = default_collate(kept)
    return x, y, len(items) - len(kept)


class EpochBatchSampler(Sampler):
    """`steps` batches of indices drawn with replacement from a generator seeded by (seed, env, epoch).

    With `shard` (rank, world) each batch is this rank's contiguous slice of the same global batch, so N
    processes train on the batches one process would (multi-GPU training, dagrad.run.distributed)."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, env_index: int,
                 shard: Optional[tuple[int, int]] = None):
        self.n, self.batch_size, self.steps, self.seed, self.env_index = n, batch_size, steps, seed, env_index
        self.epoch = 0
        rank, world = shard or (0, 1)
        if batch_size % world:
            raise ConfigError(f"data.batch_size: {batch_size} examples per environment cannot be split evenly over "
                              f"{world} processes; use a multiple of {world}")
        per = batch_size // world
        self.rows = slice(rank * per, (rank + 1) * per)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = generator(self.seed, "batches", self.env_index, self.epoch)
        yield from torch.randint(self.n, (self.steps, self.batch_size), generator=g)[:, self.rows].tolist()

    def __len__(self) -> int:
        return self.steps


@dataclass
class DataBundle:
    suite: DomainSuite
    splits: dict[str, SplitDataset]
    train_envs: list[int]
    test_envs: list[int]
    setting: str
    batch_size: int
    eval_batch_size: int
    num_workers: int
    eval_mode: str
    da_protocol: str = "domainbed"
    augment: bool = True
    guard: dict = field(default_factory=dict)  # training environment -> the guard's SplitDataset
    info: dict = field(default_factory=dict)  # what the header records about the splits

    @property
    def num_classes(self) -> int:
        return self.suite.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.suite.input_shape

    def default_steps_per_epoch(self) -> int:
        """One pass over the largest training environment's `in` split."""
        largest = max(len(self.splits[f"env{i}_in"]) for i in self.train_envs)
        return max(1, math.ceil(largest / self.batch_size))

    def _loader(self, dataset: Dataset, pin_memory: bool = False, **kwargs: Any) -> DataLoader:
        return make_loader(dataset, self.num_workers, collate, pin_memory, **kwargs)

    def training_loaders(self, steps: int, seed: int, unlabelled: bool = True,
                         pin_memory: bool = False, shard: Optional[tuple[int, int]] = None) -> "TrainingStream":
        """Per step, one labelled batch per training environment (as DomainBed) and, in the DA setting when
        `unlabelled` (the algorithm's `uses_unlabeled`), one unlabelled batch per test environment; an
        algorithm that ignores target inputs gets none, so none are read. `pin_memory` for CUDA; `shard`
        (rank, world): this process's slice of every batch (see EpochBatchSampler)."""
        labelled = [f"env{i}_in" for i in self.train_envs]
        targets = self.unlabelled_splits() if unlabelled else []
        smallest = min(labelled, key=lambda n: len(self.splits[n]), default=None)
        if smallest is not None and self.batch_size > len(self.splits[smallest]):
            warnings.warn(f"data.batch_size: {self.batch_size} examples per environment per step is more than the "
                          f"{len(self.splits[smallest])} of {smallest}; batches repeat examples (drawn with "
                          "replacement) and memory grows with the batch: a smaller batch_size trains the same data")
        samplers, loaders = [], []
        for k, name in enumerate(labelled + targets):
            dataset = self.splits[name] if k < len(labelled) else self._unlabelled_view(name)
            s = EpochBatchSampler(len(dataset), self.batch_size, steps, seed, k, shard)
            samplers.append(s)
            loaders.append(self._loader(dataset, pin_memory, batch_sampler=s))
        return TrainingStream(samplers, loaders, len(labelled), targets)

    def unlabelled_splits(self) -> list[str]:
        """The splits DA draws target inputs from: each test environment's `uda` split (DomainBed), or its
        whole `in` split (transductive, Dassl/TLlib); none in the DG setting."""
        if self.setting != "da":
            return []
        part = "in" if self.da_protocol == "transductive" else "uda"
        return [f"env{i}_{part}" for i in self.test_envs if f"env{i}_{part}" in self.splits]

    def _unlabelled_view(self, name: str) -> SplitDataset:
        """DomainBed gives target inputs its test environments' plain transform; Dassl and TLlib (the
        transductive protocol) augment them like the training inputs."""
        split = self.splits[name]
        augment = self.da_protocol == "transductive" and self.augment
        transform = self.suite.train_transform if augment else self.suite.eval_transform
        return SplitDataset(split.env, split.indices, transform, split.skip_corrupt)

    def eval_splits(self) -> dict[str, SplitDataset]:
        """The splits every evaluation reports (eval_mode fast leaves out the training envs' `in`, as SWAD)."""
        return {n: s for n, s in self.splits.items()
                if not (self.eval_mode == "fast" and _fast_skips(n, self.train_envs))}

    def eval_loader(self, pin_memory: bool = False, shard: Optional[Any] = None) -> EvalLoader:
        """All evaluation splits through one loader and one worker pool; batches never mix splits. `shard`
        (a dagrad.run.distributed.Distributed): this process's share of the batches, sums combined over all."""
        return EvalLoader(self.eval_splits(), self.eval_batch_size,
                          lambda dataset, batches: self._loader(dataset, pin_memory, batch_sampler=batches), shard)

    def fixed_batch(self, per_env: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to `per_env` examples of every training environment's guard slice (GradSamp's guard): held
        out of training and evaluation when the bundle was built with `guard_per_env`."""
        if not self.guard:
            raise ConfigError("the data were built without a guard slice; build them with guard_per_env > 0")
        items = []
        for i in self.train_envs:
            split = self.guard[i]
            items += [split[k] for k in range(min(per_env, len(split)))]
        x, y, _ = collate(items)
        return x, y


def _fast_skips(name: str, train_envs: Sequence[int]) -> bool:
    """eval_mode fast (SWAD's): leave out the training environments' `in` splits and the `uda` splits."""
    return (name.endswith("_in") and int(name[3:-3]) in train_envs) or name.endswith("_uda")


class TrainingStream:
    """Per epoch, an iterator of steps; each step is (labelled minibatches, unlabelled inputs, skipped)."""

    def __init__(self, samplers: list[EpochBatchSampler], loaders: list[DataLoader], n_labelled: int,
                 unlabelled_splits: Sequence[str] = ()):
        self.samplers, self.loaders, self.n_labelled = samplers, loaders, n_labelled
        self.unlabelled_splits = list(unlabelled_splits)  # where the unlabelled target inputs come from

    def epoch(self, epoch: int) -> Iterator[tuple[list, Optional[list], int]]:
        for s in self.samplers:
            s.set_epoch(epoch)
        for batches in zip(*self.loaders):
            labelled = [(x, y) for x, y, _ in batches[: self.n_labelled]]
            unlabelled = [x for x, _, _ in batches[self.n_labelled:]] or None
            yield labelled, unlabelled, sum(skipped for _, _, skipped in batches)


def build(cfg: Any, trial_seed: int, eval_mode: str = "full", guard_per_env: int = 0,
          dataset: Optional[Resolved] = None) -> DataBundle:
    """Build the configured dataset and split it as DomainBed does (or by its split files, or by the
    dataset's own protocol); `guard_per_env` > 0 holds out GradSamp's guard slice. `dataset`: the dataset
    already resolved (a run's Experiment holds it), else it is resolved from `cfg`."""
    suite: DomainSuite = dataset.build(data=cfg) if dataset is not None else build_suite(cfg)
    part: Partition = partition(suite, cfg, trial_seed, guard_per_env)
    splits: dict[str, SplitDataset] = {}
    for name, indices in part.indices.items():
        env = suite.environments[int(name[3:name.index("_")])]
        transform = suite.train_transform if name in part.augmented else suite.eval_transform
        splits[name] = SplitDataset(env, indices, transform, cfg.skip_corrupt)
    guard = {i: SplitDataset(suite.environments[i], idx, suite.eval_transform, cfg.skip_corrupt)
             for i, idx in part.guard.items()}
    batch_size = cfg.batch_size
    if batch_size is None:  # not resolved by an Experiment: DomainBed's default
        batch_size = 64 if dataset_spec(cfg.name).small_images else 32
    return DataBundle(suite, splits, part.train_envs, part.test_envs, cfg.setting, batch_size,
                      cfg.eval_batch_size, cfg.num_workers, eval_mode, cfg.da_protocol, cfg.augment, guard,
                      describe(part, cfg, trial_seed, guard_per_env))
