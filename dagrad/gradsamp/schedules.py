"""Which epochs GradSamp samples instead of training.

A schedule's decision is a pure function of (epoch, real epochs completed so far, consecutive non-trained
epochs just before): no hidden state, so a resumed run, or every DDP rank, decides identically. Rules
shared by every schedule:

* no epoch is sampled before ``MIN_REAL_EPOCHS`` (= 2) real, trained epochs have completed, because the
  draw needs theta_{t-1} and theta_{t-2};
* with ``max_consecutive`` = k, at most k epochs in a row are sampled; the next one trains.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from dagrad.registry import Option, Registry, options_text, value_text
from dagrad.utils.seeding import seed_hash

MIN_REAL_EPOCHS = 2


class Schedule:
    """Base: ``wants(epoch)`` is the schedule's own choice; ``decide`` adds the shared rules."""

    name = "base"

    def __init__(self, max_consecutive: int | None = None, seed: int = 0) -> None:
        self.max_consecutive = max_consecutive
        self.seed = int(seed)

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

    @classmethod
    def label(cls, options: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> str:
        """How reports and the study name this schedule with these options (`defaults`: its registry
        entry's): its name, then each option that differs from its default."""
        return cls.name + options_text(options, defaults)


class Periodic(Schedule):
    """Epochs start, start + every, start + 2 * every, ..."""

    name = "periodic"

    def __init__(self, every: int = 3, start: int = 2, max_consecutive: int | None = None, seed: int = 0) -> None:
        super().__init__(max_consecutive, seed)
        self.every, self.start = int(every), int(start)

    def wants(self, epoch: int) -> bool:
        return epoch >= self.start and (epoch - self.start) % self.every == 0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "every": self.every, "start": self.start}

    @classmethod
    def label(cls, options: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> str:
        """"every 3" (from the default start, the earliest), "every 3 from 4"."""
        rest, defaults = dict(options), defaults or {}
        text, start = f"every {value_text(rest.pop('every', 3))}", rest.pop("start", 2)
        text += f" from {start}" if start != defaults.get("start", 2) else ""
        return text + options_text(rest, defaults)


class RandomEpochs(Schedule):
    """Each epoch independently with probability p, from a hash of (seed, epoch): reproducible on resume."""

    name = "random"

    def __init__(self, probability: float = 0.3, max_consecutive: int | None = None, seed: int = 0) -> None:
        super().__init__(max_consecutive, seed)
        self.probability = float(probability)

    def wants(self, epoch: int) -> bool:
        u = seed_hash("dagrad.gradsamp.schedule.random", self.seed, int(epoch)) / 2**31
        return u < self.probability

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "probability": self.probability, "seed": self.seed}

    @classmethod
    def label(cls, options: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> str:
        """"random p=0.3"."""
        rest = dict(options)
        return f"random p={value_text(rest.pop('probability', 0.3))}" + options_text(rest, defaults or {})


class EpochList(Schedule):
    """Exactly the listed epochs (0-based); listed epochs that break the shared rules are trained instead."""

    name = "epochs"

    def __init__(self, epochs: Iterable[int] = (), max_consecutive: int | None = None, seed: int = 0) -> None:
        super().__init__(max_consecutive, seed)
        self.epochs = frozenset(int(e) for e in epochs)

    def wants(self, epoch: int) -> bool:
        return epoch in self.epochs

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "epochs": sorted(self.epochs)}

    @classmethod
    def label(cls, options: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> str:
        """"epochs 3,6,9"."""
        rest = dict(options)
        return "epochs " + ",".join(str(e) for e in rest.pop("epochs", [])) + options_text(rest, defaults or {})


#: an entry builds with `max_consecutive` and the run's `seed` as context: `entry.build(options, max_consecutive=k,
#: seed=s)`
SCHEDULES: Registry[type] = Registry("schedule", "gradsamp.schedule", builtins="dagrad.gradsamp.schedules",
                                     options_key="gradsamp.schedule_options")
SCHEDULES.register("periodic", Periodic, options={
    "every": Option(3, int, "sample every k-th epoch", low=1), "start": Option(2, int, "first epoch", low=0)})
SCHEDULES.register("random", RandomEpochs, options={
    "probability": Option(0.3, float, "each epoch independently with probability p", low=0.0, high=1.0)})
SCHEDULES.register("epochs", EpochList, options={
    "epochs": Option([], list, "the epochs to sample (0-based)", item=int, low=0)})


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
