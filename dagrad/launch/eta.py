"""When a sweep will end, from the durations of the jobs that have finished.

Jobs of one setting (full training, a GradSamp reading, its skip control) take about as long as each other,
and settings differ (a sampled epoch costs a fraction of a trained one), so each job left is expected to take
its own setting's mean; a setting none of whose jobs has finished yet takes the mean of all finished jobs.
A running job has its elapsed time taken off. The work left is shared by the jobs running at once."""

from __future__ import annotations

from statistics import fmean
from typing import Optional, Sequence


def eta_seconds(finished: Sequence[tuple[str, float]], left: Sequence[str],
                running: Sequence[tuple[str, float]] = (), parallel: int = 1) -> Optional[float]:
    """Seconds until every job `left` (their settings) and `running` ((setting, seconds so far)) has ended,
    with `parallel` jobs at a time; None before any job has finished (nothing to go by)."""
    if not finished:
        return None
    by_setting: dict[str, list[float]] = {}
    for setting, seconds in finished:
        by_setting.setdefault(setting, []).append(float(seconds))
    overall = fmean(seconds for _, seconds in finished)

    def expected(setting: str) -> float:
        return fmean(by_setting[setting]) if setting in by_setting else overall

    work = sum(expected(s) for s in left) + sum(max(0.0, expected(s) - elapsed) for s, elapsed in running)
    return work / max(1, parallel)


def format_eta(seconds: Optional[float]) -> str:
    """`eta 40 s`, `eta 12 min`, `eta 3.5 h`; empty when there is no estimate."""
    if seconds is None:
        return ""
    if seconds < 90:
        return f"eta {seconds:.0f} s"
    if seconds < 5400:
        return f"eta {seconds / 60:.0f} min"
    return f"eta {seconds / 3600:.1f} h"
