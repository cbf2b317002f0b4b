"""Whether the arms of a comparison ran under the same contention.

A GradSamp saving is a difference between runs. When other processes took a different share of the
machine's CPU while each arm trained, the arms' CPU time, and so their estimated (and even measured)
energy, differ for reasons that have nothing to do with GradSamp. The rule: a comparison is qualified
when, for some trial seed, its arms' other-process CPU shares during training differ by more than
`RULE_POINTS` percentage points. The share comes from each training window's recorded conditions
(dagrad.energy.conditions): machine busy CPU time less the run's own, over the machine's capacity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: arms whose other-process CPU shares differ by more than this many points are not compared like for like
RULE_POINTS = 10.0
#: other processes' share above which the machine counts as busy (the demo says so when energy is estimated)
BUSY_POINTS = 10.0

RULE = (f"Contention: other processes' share of the machine's CPU time while a run trained (from each "
        f"training window's /proc/stat, less the run's own CPU time). A comparison is marked ≠ when its arms' "
        f"shares differ by more than {RULE_POINTS:g} points for some trial seed: its energy saving then "
        f"reflects the machine's load as much as the setting.")
UNEQUAL = "≠"


def other_cpu_pct(epochs: list[dict]) -> float:
    """A run's other-process CPU share (%) over its training windows; nan when they did not record it."""
    machine = capacity = own = 0.0
    for record in epochs:
        train = (record.get("energy") or {}).get("train") or {}
        cond = train.get("conditions") or {}
        if cond.get("machine_cpu_s") is None or cond.get("capacity_cpu_s") is None:
            return float("nan")
        machine += float(cond["machine_cpu_s"])
        capacity += float(cond["capacity_cpu_s"])
        own += float(train.get("cpu_seconds") or 0.0)
    if capacity <= 0:
        return float("nan")
    return 100.0 * min(1.0, max(0.0, (machine - own) / capacity))


def gap(trials: pd.DataFrame, a: str, b: str) -> float:
    """The largest difference (points) in other-process CPU share between configurations `a` and `b`
    over the trial seeds both ran; nan when either did not record it."""
    if "other_cpu_pct" not in trials:
        return float("nan")
    x = trials[trials.config_key == a].set_index("trial_seed")["other_cpu_pct"]
    y = trials[trials.config_key == b].set_index("trial_seed")["other_cpu_pct"]
    d = (x - y).abs().dropna()
    return float(d.max()) if len(d) else float("nan")


def qualify(out: pd.DataFrame, trials: pd.DataFrame) -> None:
    """Add, in place, each row's gap to its full-training and control arms and whether the rule marks it."""
    out["contention_gap"] = np.nan
    out["contention_flag"] = False
    for i, row in out.iterrows():
        gaps = [gap(trials[trials.dataset == row.dataset], row.config_key, other)
                for other in (row.get("full_key"), row.get("control_key")) if isinstance(other, str)]
        gaps = [g for g in gaps if np.isfinite(g)]
        if gaps:
            out.loc[i, "contention_gap"] = max(gaps)
            out.loc[i, "contention_flag"] = max(gaps) > RULE_POINTS


def cell(row: dict[str, Any]) -> str:
    """The contention column's cell: the other processes' CPU share, marked when the rule applies."""
    pct = row.get("contention_pct", np.nan)
    if not np.isfinite(pct):
        return "–"
    return f"{pct:.0f} %" + (f" {UNEQUAL}" if row.get("contention_flag") else "")


def note(row: dict[str, Any]) -> str:
    """A marked comparison's note."""
    return (f"{row['algorithm']}, {row['setting']}: its arms ran under different contention (other processes' CPU "
            f"share differs by up to {row['contention_gap']:.0f} points); its energy saving is not like for like.")


def busy_line(summary: pd.DataFrame) -> str | None:
    """One line for a demo whose energy was estimated on a busy machine: the updates GradSamp saved first
    (they hold whatever the load), then why the energy saving may not; None when energy was measured or
    the machine was quiet."""
    if not len(summary) or "contention_pct" not in summary:
        return None
    estimated = any(s.strip().startswith("estimated") for v in summary["sources"] for s in str(v).split(","))
    busiest = summary["contention_pct"].max()
    flagged = bool(summary["contention_flag"].any())
    if not estimated or not (flagged or (np.isfinite(busiest) and busiest > BUSY_POINTS)):
        return None
    sampled = summary[~summary["sampler"].isin(["none", "skip"])]
    saved = [f"{r.setting} {r.saving_updates_pct:.0f} %" for r in sampled.itertuples()
             if np.isfinite(getattr(r, "saving_updates_pct", np.nan))]
    lead = f"Updates saved: {', '.join(saved)}. " if saved else ""
    return (f"{lead}Energy here is estimated from CPU time on a busy machine (other processes took up to "
            f"{busiest:.0f} % of its CPU, on average over a setting's runs, while they trained), so the energy savings below may not hold; "
            f"run on a quiet machine to compare energy.")
