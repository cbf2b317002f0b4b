"""What an epoch did, in one vocabulary shared by the engine, GradSamp, SWAD and the records."""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch


class EpochKind(str, enum.Enum):
    """TRAIN: steps_per_epoch real updates. SAMPLED: θ_t drawn by GradSamp, no update. SKIPPED: the
    equal-energy control's epoch (the `skip` sampler), θ_t = θ_{t-1}, no update. REJECTED: a draw was
    refused; the outcome's `fallback` says whether the epoch then trained or kept θ_{t-1}."""

    TRAIN = "train"
    SAMPLED = "sampled"
    REJECTED = "rejected"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> "EpochKind":
        raise ValueError(f"an epoch kind must be one of {', '.join(k.value for k in cls)}, got {value!r}")


FALLBACKS = ("train", "keep")
#: the kinds of an epoch GradSamp's schedule took (no updates ran, unless a rejected draw fell back to training)
SCHEDULED = (EpochKind.SAMPLED, EpochKind.SKIPPED)


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


class StepSums:
    """An epoch's per-statistic sums over its steps, for the record's means. Tensors are summed on their
    own device in float64 (exactly what adding their `.item()` values on the host gives, without waiting
    for the device every step); floats are summed on the host. Keys may differ between steps (DANN's
    discriminator and generator steps); each mean is over the steps that reported it."""

    def __init__(self) -> None:
        self._device: dict[str, torch.Tensor] = {}
        self._host: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, stats: Mapping[str, Any]) -> None:
        for name, value in stats.items():
            if isinstance(value, torch.Tensor):
                total = self._device.get(name)
                if total is None:
                    self._device[name] = value.detach().to(torch.float64, copy=True)
                else:
                    total.add_(value.detach())
            else:
                self._host[name] += float(value)
            self._counts[name] += 1

    def means(self) -> dict[str, float]:
        """The means, reading the device once."""
        names = list(self._device)
        read = dict(zip(names, torch.stack([self._device[n].reshape(()).to(self._device[names[0]].device)
                                            for n in names]).tolist())) if names else {}
        return {name: (read.get(name, 0.0) + self._host.get(name, 0.0)) / count
                for name, count in self._counts.items()}
