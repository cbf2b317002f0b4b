"""The contract every algorithm keeps, so the engine, GradSamp, SWAD and meters work with any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

Minibatch = tuple[torch.Tensor, torch.Tensor]
#: what `update` returns: statistic name -> 0-dim detached tensor (or a float known on the host)
Stats = dict[str, Union[torch.Tensor, float]]


class Algorithm(nn.Module, ABC):
    """A learner over several training environments.

    - `update(minibatches, unlabeled)` takes one labelled minibatch per training environment (and, in the
      DA setting, one unlabelled minibatch of target inputs per test environment), performs one
      optimisation step and returns scalar statistics for the record as 0-dim tensors, detached, on the
      parameters' device (plain floats are allowed for values known on the host). Never call `.item()`
      or `float()` on a device tensor in `update`: that waits for the GPU once per step. The engine
      sums the statistics on the device and reads them once, when a record or progress line needs them.
    - `predict(x)` returns logits.
    - `optimizers()` exposes every optimizer by name so the engine can save, restore and (for GradSamp)
      reset them.
    All trainable state is in registered parameters and buffers, so `state_dict()` is the whole model and
    GradSamp samples every module the algorithm has. The engine sets `progress` (the fraction of the
    training budget done) before each update, for algorithms that ramp something over training.
    """

    #: does update() use the `unlabeled` target inputs (DA)?
    uses_unlabeled: bool = False
    #: the submodules whose parameters (and floating buffers) a GradSamp epoch draws, by attribute name;
    #: None: every trainable tensor the algorithm has. Tensors outside them are kept as they are.
    sampled_modules: Optional[tuple[str, ...]] = None
    #: the rule for each piece of extra state across resume and sampled epochs (name -> rule), shown in docs;
    #: every such piece is a buffer, so checkpoints carry it
    state_rules: dict[str, str] = {}
    #: input channels the featurizer reads beyond the data's (ARM appends a context channel); when not 0,
    #: the algorithm is built with the data's `input_shape` as a keyword argument
    extra_input_channels: int = 0
    #: a batch size DomainBed fixes for this algorithm on full-size images (ARM: 8); None: the dataset's
    full_size_batch_size: Optional[int] = None
    #: DomainBed's own batch-size hyperparameter for this algorithm on full-size images, a function of the
    #: dataset's name returning an Option (RDM); None: the dataset's
    full_size_batch_size_option: Optional[Callable[[str], Any]] = None

    def __init__(self, num_classes: int, num_domains: int, hparams: dict):
        super().__init__()
        self.num_classes = num_classes
        self.num_domains = num_domains
        self.hparams = dict(hparams)
        self.progress = 0.0

    @abstractmethod
    def update(self, minibatches: list[Minibatch], unlabeled: Optional[list[torch.Tensor]] = None) -> Stats:
        """One optimisation step; returns statistics such as {'loss': tensor(0.31)} (see the class docstring)."""

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of inputs."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer the algorithm steps, by a stable name."""

    @property
    def flops_period(self) -> int:
        """After how many update() calls the step pattern repeats (for counting FLOPs once per pattern)."""
        return 1


class FeaturizerClassifier(Algorithm):
    """The common shape: a featurizer, a linear classifier on its features, and one Adam over both
    (DomainBed's `lr` and `weight_decay`). Subclasses write only `update`."""

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(num_classes, num_domains, hparams)
        self.featurizer = featurizer
        self.classifier = nn.Linear(featurizer.n_outputs, num_classes)
        self.network = nn.Sequential(self.featurizer, self.classifier)
        self.optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer step on `loss`."""
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}
