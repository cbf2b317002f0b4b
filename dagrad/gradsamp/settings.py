"""A GradSamp configuration turned into the objects a run uses: the sampler, the schedule and the switches.

The sampler and the schedule own their options (`gradsamp.sampler_options`, `gradsamp.schedule_options`),
checked against their registry entries; every other setting and its valid values is declared once, in
`dagrad.config.schema.GradSampConfig`. Any object with GradSampConfig's attributes works (missing ones take
GradSampConfig's defaults), which keeps tests short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagrad.config.schema import GradSampConfig
from dagrad.utils.errors import ConfigError
from dagrad.gradsamp.samplers import Sampler, sampler_and_scale
from dagrad.gradsamp.schedules import Schedule, build_schedule

_DEFAULTS = GradSampConfig()


@dataclass(frozen=True)
class Settings:
    sampler: Sampler
    schedule: Schedule
    scale: float
    buffers: str
    optimizer_state: str
    guard: bool
    guard_tolerance: float
    guard_fallback: str
    history_device: str


def read_settings(cfg: Any, run_seed: int) -> Settings:
    """The run's sampler, schedule and switches; the random schedule is seeded from `run_seed`."""
    get = lambda key: getattr(cfg, key, getattr(_DEFAULTS, key))  # noqa: E731
    name = get("sampler")
    if name == "none":
        raise ConfigError("gradsamp.sampler is 'none' (GradSamp off); build GradSamp only when a sampler is chosen")
    sampler, scale = sampler_and_scale(name, get("sampler_options"))
    schedule = build_schedule(get("schedule"), get("max_consecutive"), run_seed, **(get("schedule_options") or {}))
    return Settings(sampler, schedule, scale, get("buffers"), get("optimizer_state"), get("guard"),
                    float(get("guard_tolerance")), get("guard_fallback"), get("history_device"))
