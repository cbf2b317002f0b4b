"""Small facts about evaluation metrics shared by the engine and the analysis (no torch, no pandas)."""

from __future__ import annotations

from typing import Iterable


def env_mean(metrics: dict, envs: Iterable[int], split: str, what: str = "acc") -> float:
    """Mean of e.g. the `out` accuracy over the given environments (DomainBed's selection quantity);
    nan when none of them is in `metrics`."""
    values = [metrics.get(f"env{i}_{split}_{what}") for i in envs]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")
