"""What an epoch did, in one vocabulary shared by the engine, GradSamp, SWAD and the records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional


class EpochKind(str, enum.Enum):
    """TRAIN: steps_per_epoch real updates. SAMPLED: θ_t drawn by GradSamp, no update. REJECTED: a draw
    was refused; the outcome's `fallback` says whether the epoch then trained or kept θ_{t-1}."""

    TRAIN = "train"
    SAMPLED = "sampled"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> "EpochKind":
        raise ValueError(f"an epoch kind must be one of {', '.join(k.value for k in cls)}, got {value!r}")


FALLBACKS = ("train", "keep")


@dataclass
class EpochOutcome:
    """One epoch's work, before evaluation: its kind, what ran, and the statistics for the record.

    `update_stats` are the mean losses etc. of the updates (tensors until a record needs them);
    `sampler_stats` describe GradSamp's draw; `flops` counts the training arithmetic."""

    kind: EpochKind = EpochKind.TRAIN
    fallback: Optional[str] = None
    sampler_stats: dict[str, Any] = field(default_factory=dict)
    update_stats: dict[str, Any] = field(default_factory=dict)
    flops: float = 0.0

    def __post_init__(self) -> None:
        self.kind = EpochKind(self.kind)
        if self.kind is EpochKind.REJECTED and self.fallback not in FALLBACKS:
            raise ValueError(f"a rejected epoch needs fallback 'train' or 'keep', got {self.fallback!r}")
        if self.kind is not EpochKind.REJECTED and self.fallback is not None:
            raise ValueError(f"only a rejected epoch has a fallback, got {self.fallback!r} for {self.kind}")

    @property
    def trained(self) -> bool:
        """Whether real updates ran (a trained epoch, or a rejected draw that fell back to training)."""
        return self.kind is EpochKind.TRAIN or self.fallback == "train"

    @property
    def moved(self) -> bool:
        """Whether θ changed: false only when a rejected draw kept θ_{t-1}."""
        return self.fallback != "keep"
