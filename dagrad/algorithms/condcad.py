"""CondCAD (Ruan et al. 2022): CAD's bottleneck conditioned on the label, min I(D;Z|Y); see cad.py."""

from __future__ import annotations

from dagrad.algorithms.cad import CAD, CAD_HPARAMS
from dagrad.algorithms.registry import register


@register("condcad", hparams=CAD_HPARAMS,
          description="Conditional contrastive domain bottleneck, min I(D;Z|Y) (CondCAD)")
class CondCAD(CAD):
    conditional = True


__all__ = ["CondCAD"]
