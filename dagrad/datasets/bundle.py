"""A dataset made ready for one run: environments split into `in`/`out`, per-split transforms, and the
loaders the engine draws from. Training batches follow DomainBed: one minibatch per training
environment per step, sampled with replacement; here the draw is seeded by (seed, epoch, environment),
so a resumed run sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from dagrad.datasets.base import DomainSuite, Environment, Transform
from dagrad.datasets.loading import EvalLoader, make_loader
from dagrad.datasets.specs import build_suite
from dagrad.datasets.splits import random_split
from dagrad.errors import ConfigError, DataError
from dagrad.seeding import generator


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
    """`steps` batches of indices drawn with replacement from a generator seeded by (seed, env, epoch)."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, env_index: int):
        self.n, self.batch_size, self.steps, self.seed, self.env_index = n, batch_size, steps, seed, env_index
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = generator(self.seed, "batches", self.env_index, self.epoch)
        yield from torch.randint(self.n, (self.steps, self.batch_size), generator=g).tolist()

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

    def training_loaders(self, steps: int, seed: int, pin_memory: bool = False) -> "TrainingStream":
        """One loader per environment (one minibatch of each per step, as DomainBed); `pin_memory` for CUDA."""
        labelled = [f"env{i}_in" for i in self.train_envs]
        unlabelled = [f"env{i}_in" for i in self.test_envs] if self.setting == "da" else []
        samplers, loaders = [], []
        for k, name in enumerate(labelled + unlabelled):
            s = EpochBatchSampler(len(self.splits[name]), self.batch_size, steps, seed, k)
            dataset = self.splits[name] if k < len(labelled) else self._unlabelled_view(name)
            samplers.append(s)
            loaders.append(self._loader(dataset, pin_memory, batch_sampler=s))
        return TrainingStream(samplers, loaders, len(labelled))

    def _unlabelled_view(self, name: str) -> SplitDataset:
        split = self.splits[name]
        return SplitDataset(split.env, split.indices, self.suite.train_transform, split.skip_corrupt)

    def eval_splits(self) -> dict[str, SplitDataset]:
        """The splits every evaluation reports (eval_mode fast leaves out the training envs' `in`, as SWAD)."""
        return {n: s for n, s in self.splits.items()
                if not (self.eval_mode == "fast" and _is_train_in(n, self.train_envs))}

    def eval_loader(self, pin_memory: bool = False) -> EvalLoader:
        """All evaluation splits through one loader and one worker pool; batches never mix splits."""
        return EvalLoader(self.eval_splits(), self.eval_batch_size,
                          lambda dataset, batches: self._loader(dataset, pin_memory, batch_sampler=batches))

    def fixed_batch(self, per_env: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `per_env` examples of every training environment's `out` split (e.g. GradSamp's guard)."""
        items = []
        for i in self.train_envs:
            split = self.splits[f"env{i}_out"]
            items += [split[k] for k in range(min(per_env, len(split)))]
        x, y, _ = collate(items)
        return x, y


def _is_train_in(name: str, train_envs: Sequence[int]) -> bool:
    return name.endswith("_in") and int(name[3:-3]) in train_envs


class TrainingStream:
    """Per epoch, an iterator of steps; each step is (labelled minibatches, unlabelled inputs, skipped)."""

    def __init__(self, samplers: list[EpochBatchSampler], loaders: list[DataLoader], n_labelled: int):
        self.samplers, self.loaders, self.n_labelled = samplers, loaders, n_labelled

    def epoch(self, epoch: int) -> Iterator[tuple[list, Optional[list], int]]:
        for s in self.samplers:
            s.set_epoch(epoch)
        for batches in zip(*self.loaders):
            labelled = [(x, y) for x, y, _ in batches[: self.n_labelled]]
            unlabelled = [x for x, _, _ in batches[self.n_labelled:]] or None
            yield labelled, unlabelled, sum(skipped for _, _, skipped in batches)


def build(cfg: Any, trial_seed: int, eval_mode: str = "full") -> DataBundle:
    """Build the configured dataset and split it as DomainBed does (or by its official split files)."""
    suite: DomainSuite = build_suite(cfg)
    n_envs = len(suite.environments)
    bad = [i for i in cfg.test_envs if not 0 <= i < n_envs]
    if bad:
        listing = ", ".join(f"{i}={name}" for i, name in enumerate(suite.env_names))
        raise ConfigError(f"data.test_envs: {bad[0]} is not an environment of {cfg.name}; environments: {listing}")
    train_envs = [i for i in range(n_envs) if i not in cfg.test_envs]
    if not train_envs:
        raise ConfigError("data.test_envs: every environment is held out; at least one must be left to train on")
    if cfg.split == "official" and suite.official_splits is None:
        raise ConfigError(f"data.split: {cfg.name} has no official split files here; use data.split=random")
    splits: dict[str, SplitDataset] = {}
    for i, env in enumerate(suite.environments):
        if cfg.split == "official":
            in_idx, out_idx = suite.official_splits[i]
        else:
            in_idx, out_idx = random_split(len(env), cfg.holdout_fraction, trial_seed, i)
        training = i in train_envs
        in_tf = suite.train_transform if training and cfg.augment else suite.eval_transform
        out_tf = suite.train_transform if training and cfg.augment and cfg.val_augment else suite.eval_transform
        splits[f"env{i}_in"] = SplitDataset(env, in_idx, in_tf, cfg.skip_corrupt)
        splits[f"env{i}_out"] = SplitDataset(env, out_idx, out_tf, cfg.skip_corrupt)
    return DataBundle(suite, splits, train_envs, list(cfg.test_envs), cfg.setting, cfg.batch_size,
                      cfg.eval_batch_size, cfg.num_workers, eval_mode)
