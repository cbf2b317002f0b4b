"""A run's GradSamp resolved once: the sampler and the schedule (each its registry entry with checked
options) and the switches, whose valid values `dagrad.config.schema.GradSampConfig` declares.

`resolve_settings` is called once per run, by `dagrad.config.experiment.resolve`; `GradSamp` builds from
what it returns and checks nothing again. A GradSamp that is off resolves to None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dagrad.config.schema import OFF, GradSampConfig
from dagrad.gradsamp.samplers import SAMPLERS, Sampler
from dagrad.gradsamp.schedules import SCHEDULES, Schedule
from dagrad.registry import Resolved

_DEFAULTS = GradSampConfig()


@dataclass(frozen=True)
class Settings:
    """The sampler and the schedule resolved, and the switches as the schema checked them."""

    sampler: Resolved
    schedule: Resolved
    max_consecutive: Optional[int] = None
    buffers: str = "keep"
    optimizer_state: str = "keep"
    guard: bool = False
    guard_tolerance: float = 0.05
    guard_fallback: str = "train"
    history_device: str = "device"

    def build_sampler(self) -> Sampler:
        """The sampler (its `scale` set: GradSamp applies it)."""
        return self.sampler.build()

    def build_schedule(self, run_seed: int) -> Schedule:
        """The schedule; a random one is seeded from `run_seed`."""
        return self.schedule.build(max_consecutive=self.max_consecutive, seed=int(run_seed))


def resolve_settings(cfg: Any) -> Optional[Settings]:
    """The settings of a schema-checked GradSamp config (any object with GradSampConfig's attributes;
    missing ones take its defaults), the sampler's and schedule's options checked against their entries;
    None when GradSamp is off."""
    get = lambda key: getattr(cfg, key, getattr(_DEFAULTS, key))  # noqa: E731
    if get("sampler") == OFF:
        return None
    return Settings(SAMPLERS.resolve(get("sampler"), get("sampler_options")),
                    SCHEDULES.resolve(get("schedule"), get("schedule_options")), get("max_consecutive"),
                    get("buffers"), get("optimizer_state"), get("guard"), float(get("guard_tolerance")),
                    get("guard_fallback"), get("history_device"))
