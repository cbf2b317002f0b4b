"""Weight-averaging strategies that wrap any algorithm (SWAD's dense averaging over the loss valley).

The engine drives an averager through the `Averager` protocol and never needs to know which one it is:
`after_step` after every optimizer step (and once after a sampled epoch), `after_epoch` at every
evaluation, `should_stop` to end training early, `averaged_module`/`finalize` for the model to report.
Averagers register in `AVERAGERS` with their options (`averaging.options`); an entry builds with the module it
wraps as context: `AVERAGERS.get(name).build(options, module=model)`.
"""

from __future__ import annotations

from typing import Iterable, Optional, Protocol, runtime_checkable

from torch import nn

from dagrad.averaging.loss_valley import LossValley
from dagrad.averaging.swad import SWAD, SWAD_OPTIONS
from dagrad.registry import Registry

AVERAGERS: Registry = Registry("averager", "averaging.name", builtins="dagrad.averaging")


@runtime_checkable
class Averager(Protocol):
    def after_step(self, module: nn.Module) -> None:
        """Count the module's current weights as one iterate (after every optimizer step)."""

    def after_epoch(self, module: nn.Module, val_loss: float, kind: str) -> None:
        """Close the current segment at an evaluation, given the online model's training-domain
        validation loss and the epoch's kind (an EpochKind)."""

    def should_stop(self) -> bool:
        """True once the strategy has finished and training may stop early."""

    def averaged_module(self) -> Optional[nn.Module]:
        """A copy of the module with the current averaged weights, or None while there is none."""

    def finalize(self, batches: Optional[Iterable] = None, steps: Optional[int] = None) -> Optional[nn.Module]:
        """At the end of training: settle what is queued and return the final averaged model; `batches`
        (training inputs) serve to re-estimate BatchNorm statistics where the averager needs them."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, d: dict) -> None: ...

    def stats(self) -> dict:
        """JSON-serialisable state for the record."""


AVERAGERS.register("swad", SWAD, description="SWAD: dense weight averaging over the loss valley (Cha et al. 2021)",
                   options=SWAD_OPTIONS)


__all__ = ["AVERAGERS", "Averager", "LossValley", "SWAD"]
