"""CausIRL with MMD's Gaussian-kernel distance between the two halves; see causirl.py."""

from __future__ import annotations

from dagrad.algorithms.causirl import CausIRL
from dagrad.algorithms.coral import CORAL_HPARAMS
from dagrad.algorithms.mmd import mmd
from dagrad.algorithms.registry import register


@register("causirl_mmd", hparams=CORAL_HPARAMS,
          description="Causal invariant representations: Gaussian MMD between random batch halves")
class CausIRL_MMD(CausIRL):  # noqa: N801 - DomainBed's name
    distance = staticmethod(mmd)


__all__ = ["CausIRL_MMD"]
