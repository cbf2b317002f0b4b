"""What every dataset provides: named environments (domains) of labelled examples, read lazily, plus
the transforms for training and evaluation. Splitting and loading are generic (see bundle.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

Transform = Callable[[Any], torch.Tensor]


class Environment(ABC):
    """One domain: `len(env)` examples whose labels are known without reading the inputs."""

    name: str

    @property
    @abstractmethod
    def labels(self) -> np.ndarray:
        """Integer class labels, one per example."""

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def load(self, index: int) -> Any:
        """The raw input of one example (a PIL image, or a tensor for embedded data)."""

    def describe(self, index: int) -> str:
        """Where an example comes from, for error messages."""
        return f"{self.name}[{index}]"


class TensorEnvironment(Environment):
    """An environment held in memory as one tensor of inputs."""

    def __init__(self, name: str, inputs: torch.Tensor, labels: np.ndarray):
        self.name = name
        self.inputs = inputs
        self._labels = np.asarray(labels, dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def load(self, index: int) -> torch.Tensor:
        return self.inputs[index]

    def load_many(self, indices: Sequence[int]) -> torch.Tensor:
        return self.inputs[torch.as_tensor(indices, dtype=torch.long)]


@dataclass
class ProtocolSplits:
    """A dataset's own evaluation protocol (e.g. WILDS's): which environments are trained on, every
    environment's (in, out) indices, and how the protocol's metrics are made from the split accuracies.

    `metrics` is plain data, recorded in the run header so the analysis computes the protocol's figures
    from the records alone: {"splits": {protocol split: [dagrad split names]}, "groups": {dagrad split:
    group name} (worst-group figures), "worst_group": what a group is (e.g. "region") or None,
    "exclude_groups": groups left out of the worst group, "selection": [split, statistic]}."""

    name: str
    train_envs: list[int]
    splits: list[tuple[np.ndarray, np.ndarray]]
    metrics: dict = field(default_factory=dict)


@dataclass
class DomainSuite:
    """A dataset as a list of environments with shared classes (what a dataset builder returns)."""

    name: str
    environments: list[Environment]
    num_classes: int
    input_shape: tuple[int, int, int]
    train_transform: Optional[Transform] = None  # for the training environments' `in` splits
    eval_transform: Optional[Transform] = None  # for every other split
    class_names: list[str] = field(default_factory=list)
    #: per environment, the dataset's own (in, out) index arrays, when it ships split files
    official_splits: Optional[list[tuple[np.ndarray, np.ndarray]]] = None
    #: the dataset's own protocols by name (`data.protocol`), e.g. {"wilds": ProtocolSplits(...)}
    protocols: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    @property
    def env_names(self) -> list[str]:
        return [env.name for env in self.environments]
