"""Turn a GradSamp configuration object into validated settings (sampler, schedule and switches).

Accepts dagrad.config.GradSampConfig or any object with the same attribute names (a SimpleNamespace in
tests); a missing attribute takes the default below, a bad value raises ConfigError saying what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dagrad.errors import ConfigError
from dagrad.gradsamp.samplers import SAMPLERS, Sampler, build_sampler
from dagrad.gradsamp.schedules import Schedule, build_schedule

DEFAULTS: dict[str, Any] = {
    "sampler": "none", "scale": 1.0, "element_c": 0.5, "ggd_beta": None,
    "schedule": "periodic", "every": 3, "start": 2, "probability": 0.3, "epochs": (), "max_consecutive": None,
    "buffers": "keep", "optimizer_state": "keep",
    "guard": False, "guard_tolerance": 0.05, "guard_fallback": "train",
}
CHOICES = {"buffers": ("keep", "extrapolate"), "optimizer_state": ("keep", "reset"), "guard_fallback": ("train", "keep")}


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


def read_settings(cfg: Any, run_seed: int) -> Settings:
    """Validated settings from ``cfg``; the random schedule is seeded from ``run_seed``."""
    get = lambda key: getattr(cfg, key, DEFAULTS[key])  # noqa: E731
    name = get("sampler")
    if name == "none":
        raise ConfigError("gradsamp.sampler is 'none' (GradSamp off); build GradSamp only when a sampler is chosen")
    if name not in SAMPLERS:
        raise ConfigError(f"unknown gradsamp.sampler {name!r}; allowed: none, {', '.join(sorted(SAMPLERS))}")
    sampler_params = {"element": {"c": _number(get("element_c"), "gradsamp.element_c")},
                      "ggd": {"beta": None if get("ggd_beta") is None else _number(get("ggd_beta"), "gradsamp.ggd_beta")}}
    sampler = build_sampler(name, **sampler_params.get(name, {}))

    kind = get("schedule")
    schedule_params = {
        "periodic": {"every": get("every"), "start": get("start")},
        "random": {"probability": get("probability"), "seed": int(run_seed)},
        "epochs": {"epochs": list(get("epochs") or [])},
    }
    if kind not in schedule_params:
        raise ConfigError(f"unknown gradsamp.schedule {kind!r}; allowed: {', '.join(schedule_params)}")
    schedule = build_schedule(kind, max_consecutive=get("max_consecutive"), **schedule_params[kind])

    scale = _number(get("scale"), "gradsamp.scale")
    if scale < 0:
        raise ConfigError(f"gradsamp.scale must be a finite number >= 0, got {scale!r}")
    for key, allowed in CHOICES.items():
        if get(key) not in allowed:
            raise ConfigError(f"gradsamp.{key} must be one of {', '.join(allowed)}, got {get(key)!r}")
    if not isinstance(get("guard"), bool):
        raise ConfigError(f"gradsamp.guard must be true or false, got {get('guard')!r}")
    tolerance = _number(get("guard_tolerance"), "gradsamp.guard_tolerance")
    if tolerance < 0:
        raise ConfigError(f"gradsamp.guard_tolerance must be >= 0, got {tolerance!r}")
    return Settings(sampler, schedule, scale, get("buffers"), get("optimizer_state"), get("guard"), tolerance,
                    get("guard_fallback"))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return float(value)
