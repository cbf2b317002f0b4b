"""Weight-averaging strategies that wrap any algorithm (SWAD's dense averaging over the loss valley).

The engine drives an averager through the `Averager` protocol and never needs to know which one it is:
`after_step` after every optimizer step (and once after a sampled epoch), `after_epoch` at every
evaluation, `should_stop` to end training early, `averaged_module`/`finalize` for the model to report.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from torch import nn

from dagrad.averaging.loss_valley import LossValley, check_valley_settings
from dagrad.averaging.swad import EPOCH_KINDS, SWAD
from dagrad.errors import ConfigError


@runtime_checkable
class Averager(Protocol):
    def after_step(self, module: nn.Module) -> None:
        """Count the module's current weights as one iterate (after every optimizer step)."""

    def after_epoch(self, module: nn.Module, val_loss: float, kind: str) -> None:
        """Close the current segment at an evaluation, given the online model's training-domain
        validation loss and the epoch's kind ("train", "sampled" or "rejected")."""

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


def build_averager(cfg: Any, module: nn.Module) -> Optional[Averager]:
    """The averager `cfg` (a dagrad.config.AveragingConfig) names for `module`, or None for "none"."""
    if cfg.name == "none":
        return None
    if cfg.name == "swad":
        check_valley_settings(cfg.n_converge, cfg.n_tolerance, cfg.tolerance_ratio)
        return SWAD(module, cfg.n_converge, cfg.n_tolerance, cfg.tolerance_ratio, cfg.early_stop)
    raise ConfigError(f"averaging.name: unknown averager {cfg.name!r}; choose one of: none, swad")


__all__ = ["Averager", "EPOCH_KINDS", "LossValley", "SWAD", "build_averager"]
