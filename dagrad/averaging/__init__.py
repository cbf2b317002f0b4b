"""Weight-averaging strategies that wrap any algorithm (SWAD's dense averaging over the loss valley).

The engine drives an averager through the `Averager` protocol and never needs to know which one it is:
`after_step` after every optimizer step (and once after a sampled epoch), `after_epoch` at every
evaluation, `should_stop` to end training early, `averaged_module`/`finalize` for the model to report.
Averagers register in `AVERAGERS` with their options (`averaging.options`).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from torch import nn

from dagrad.averaging.loss_valley import LossValley
from dagrad.averaging.swad import SWAD
from dagrad.registry import Option, Registry

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

    def finalize(self) -> Optional[nn.Module]:
        """At the end of training: settle what is queued and return the final averaged model."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, d: dict) -> None: ...

    def stats(self) -> dict:
        """JSON-serialisable state for the record."""


AVERAGERS.register("swad", SWAD, description="SWAD: dense weight averaging over the loss valley (Cha et al. 2021)",
                   options={
                       "n_converge": Option(3, int, "N_s: evaluations without improvement that start the valley",
                                            low=1),
                       "n_tolerance": Option(6, int, "N_e: evaluations a segment may wait to fall under the "
                                             "threshold", low=1),
                       "tolerance_ratio": Option(0.3, float, "r: threshold = (1 + r) x the start losses' mean",
                                                 low=0.0),
                       "early_stop": Option(True, bool, "stop training when the valley ends"),
                   })


def build_averager(cfg: Any, module: nn.Module) -> Optional[Averager]:
    """The averager `cfg` (an AveragingConfig: name and options) names for `module`, or None for "none"."""
    if cfg.name == "none":
        return None
    entry = AVERAGERS.get(cfg.name)
    options = entry.resolve(getattr(cfg, "options", None), "averaging.options")
    return entry.load()(module, **options)


__all__ = ["AVERAGERS", "Averager", "LossValley", "SWAD", "build_averager"]
