"""CausIRL with CORAL's distance (mean and covariance differences) between the two halves; see causirl.py."""

from __future__ import annotations

from torch import Tensor

from dagrad.algorithms.causirl import CausIRL
from dagrad.algorithms.coral import CORAL_HPARAMS, coral_penalty
from dagrad.algorithms.registry import register


def coral_distance(x: Tensor, y: Tensor) -> Tensor:
    return coral_penalty([x, y])


@register("causirl_coral", hparams=CORAL_HPARAMS,
          description="Causal invariant representations: CORAL distance between random batch halves")
class CausIRL_CORAL(CausIRL):  # noqa: N801 - DomainBed's name
    distance = staticmethod(coral_distance)


__all__ = ["CausIRL_CORAL"]
