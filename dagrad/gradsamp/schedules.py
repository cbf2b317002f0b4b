"""Which epochs GradSamp samples instead of training.

A schedule's decision is a pure function of (epoch, real epochs completed so far, consecutive non-trained
epochs just before): no hidden state, so a resumed run, or every DDP rank, decides identically. Rules
shared by every schedule:

* no epoch is sampled before ``MIN_REAL_EPOCHS`` (= 2) real, trained epochs have completed, because the
  draw needs theta_{t-1} and theta_{t-2};
* with ``max_consecutive`` = k, at most k epochs in a row are sampled; the next one trains.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from dagrad.errors import ConfigError
from dagrad.seeding import seed_hash

MIN_REAL_EPOCHS = 2


class Schedule:
    """Base: ``wants(epoch)`` is the schedule's own choice; ``decide`` adds the shared rules."""

    name = "base"

    def __init__(self, max_consecutive: int | None = None) -> None:
        if max_consecutive is not None and (not _is_int(max_consecutive) or max_consecutive < 1):
            raise ConfigError(f"max_consecutive must be an integer >= 1 or null, got {max_consecutive!r}")
        self.max_consecutive = max_consecutive

    def wants(self, epoch: int) -> bool:
        """Whether this schedule picks ``epoch`` (0-based), before the shared rules."""
        raise NotImplementedError

    def decide(self, epoch: int, real_epochs: int, consecutive_sampled: int) -> bool:
        """True if ``epoch`` should be sampled, given the real epochs completed and the sampled run just before."""
        if real_epochs < MIN_REAL_EPOCHS:
            return False
        if self.max_consecutive is not None and consecutive_sampled >= self.max_consecutive:
            return False
        return self.wants(epoch)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "max_consecutive": self.max_consecutive}


class Periodic(Schedule):
    """Epochs start, start + every, start + 2 * every, ..."""

    name = "periodic"

    def __init__(self, every: int = 3, start: int = 2, max_consecutive: int | None = None) -> None:
        super().__init__(max_consecutive)
        if not _is_int(every) or every < 1:
            raise ConfigError(f"periodic schedule: every must be an integer >= 1, got {every!r}")
        if not _is_int(start) or start < 0:
            raise ConfigError(f"periodic schedule: start must be an integer >= 0, got {start!r}")
        self.every, self.start = int(every), int(start)

    def wants(self, epoch: int) -> bool:
        return epoch >= self.start and (epoch - self.start) % self.every == 0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "every": self.every, "start": self.start}


class RandomEpochs(Schedule):
    """Each epoch independently with probability p, from a hash of (seed, epoch): reproducible on resume."""

    name = "random"

    def __init__(self, probability: float = 0.3, seed: int = 0, max_consecutive: int | None = None) -> None:
        super().__init__(max_consecutive)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0.0 <= probability <= 1.0:
            raise ConfigError(f"random schedule: probability must be a number in [0, 1], got {probability!r}")
        if not _is_int(seed):
            raise ConfigError(f"random schedule: seed must be an integer, got {seed!r}")
        self.probability, self.seed = float(probability), int(seed)

    def wants(self, epoch: int) -> bool:
        u = seed_hash("dagrad.gradsamp.schedule.random", self.seed, int(epoch)) / 2**31
        return u < self.probability

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "probability": self.probability, "seed": self.seed}


class EpochList(Schedule):
    """Exactly the listed epochs (0-based); listed epochs that break the shared rules are trained instead."""

    name = "epochs"

    def __init__(self, epochs: Iterable[int] = (), max_consecutive: int | None = None) -> None:
        super().__init__(max_consecutive)
        epochs = list(epochs)
        bad = [e for e in epochs if not _is_int(e) or e < 0]
        if bad:
            raise ConfigError(f"epochs schedule: epochs must be integers >= 0, got {bad!r}")
        self.epochs = frozenset(int(e) for e in epochs)

    def wants(self, epoch: int) -> bool:
        return epoch in self.epochs

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "epochs": sorted(self.epochs)}


SCHEDULES = {"periodic": Periodic, "random": RandomEpochs, "epochs": EpochList}
_PARAMS = {
    "periodic": ("every", "start", "max_consecutive"),
    "random": ("probability", "seed", "max_consecutive"),
    "epochs": ("epochs", "max_consecutive"),
}


def build_schedule(name: str, **params: Any) -> Schedule:
    """The schedule called ``name``; ConfigError naming what is allowed otherwise."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown GradSamp schedule {name!r}; allowed: {', '.join(sorted(SCHEDULES))}")
    unknown = sorted(set(params) - set(_PARAMS[name]))
    if unknown:
        raise ConfigError(
            f"schedule {name!r} does not take {', '.join(unknown)}; its parameters: {', '.join(_PARAMS[name])}"
        )
    return SCHEDULES[name](**params)


def planned_epochs(schedule: Schedule, total_epochs: int) -> list[int]:
    """The epochs a run of ``total_epochs`` would sample if every draw is accepted (for plans and reports)."""
    sampled, real, consecutive = [], 0, 0
    for epoch in range(total_epochs):
        if schedule.decide(epoch, real, consecutive):
            sampled.append(epoch)
            consecutive += 1
        else:
            real += 1
            consecutive = 0
    return sampled


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) or (isinstance(x, float) and x.is_integer() and math.isfinite(x))
