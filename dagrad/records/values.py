"""Numbers read from record lines, in one place for everything that shows them: the analysis tables,
the API's `Run.epochs` frame and the trackers (TensorBoard, W&B). So a curve in TensorBoard, a column
in a notebook and a cell of `dagrad report` are the same number, computed from the same record.

- `reading_energy`: joules of a stored meter Reading, summed over its readable components, with the
  source labels (`unreadable` added when a component had no joules: unknown, never 0).
- `EpochValues`: an epoch record as named numbers in groups (progress, accuracy, loss, energy, flops,
  gradsamp, averaged, averager), carrying cumulative energy from epoch to epoch.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

from dagrad.records.metrics import env_mean


def epoch_kind(record: dict) -> str:
    """An epoch record's kind; the skip control's epochs are `skipped` (records written before that kind
    existed called them `sampled` and are read as `skipped`)."""
    kind = record.get("kind") or "train"
    return "skipped" if kind == "sampled" and record.get("sampler") == "skip" else kind

UNREADABLE = "unreadable"  # a source label added when some component of a reading had no joules


def energy_joules(reading: Optional[dict]) -> tuple[Optional[float], list[str]]:
    """Total joules of a stored Reading and the sources it was summed over (None if none was readable)."""
    if not reading:
        return None, []
    parts = [c for c in reading.get("components", {}).values() if c.get("joules") is not None]
    if not parts:
        return None, []
    return sum(c["joules"] for c in parts), sorted({c["source"] for c in parts})


def reading_energy(reading: Optional[dict]) -> tuple[float, set]:
    """(joules, sources) of a stored Reading, the sources marked `unreadable` when a component was unread."""
    joules, sources = energy_joules(reading)
    labels = set(sources)
    if reading and any(c.get("joules") is None for c in reading.get("components", {}).values()):
        labels.add(UNREADABLE)
    return joules or 0.0, labels


def phase_energy(record: dict, phase: str) -> tuple[float, set]:
    return reading_energy((record.get("energy") or {}).get(phase))


def _number(value: Any) -> Optional[float]:
    """A finite-or-not float for numbers and flags; None for anything else (text, lists, nothing)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def numeric_leaves(data: Optional[dict], prefix: str) -> dict[str, float]:
    """The numbers (and flags) of a nested mapping, flattened as prefix + key path joined by `_`."""
    out: dict[str, float] = {}
    for key, value in (data or {}).items():
        if isinstance(value, dict):
            out.update(numeric_leaves(value, f"{prefix}{key}_"))
        elif (number := _number(value)) is not None:
            out[f"{prefix}{key}"] = number
    return out


class EpochValues:
    """A run's epoch records, given in order, as named numbers (cumulative energy carried along).

    `values(record)` returns {group: {name: value}}; names are unique across groups, so the groups
    flatten into one row (`row(record)`), while trackers show them as `group/name`."""

    def __init__(self, test_envs: Iterable[int], train_envs: Iterable[int]):
        self.test_envs, self.train_envs = list(test_envs), list(train_envs)
        self.cum_train_J = self.cum_eval_J = 0.0

    def values(self, record: dict) -> dict[str, dict[str, Any]]:
        metrics = record.get("metrics") or {}
        energy = record.get("energy") or {}
        train_J, train_src = phase_energy(record, "train")
        eval_J, eval_src = phase_energy(record, "eval")
        self.cum_train_J += train_J
        self.cum_eval_J += eval_J
        update_stats = dict(record.get("update_stats") or {})
        skipped = update_stats.pop("skipped_examples", 0)
        groups: dict[str, dict[str, Any]] = {
            "progress": {"epoch": record["epoch"], "step": record["step"], "updates": record["updates"],
                         "sampled": float(epoch_kind(record) == "sampled"),
                         "skipped": float(epoch_kind(record) == "skipped"), "skipped_examples": skipped,
                         "seconds": record.get("seconds", math.nan),
                         "train_seconds": (energy.get("train") or {}).get("seconds", math.nan),
                         "eval_seconds": (energy.get("eval") or {}).get("seconds", math.nan)},
            "text": {"kind": epoch_kind(record), "fallback": record.get("fallback"),
                     "train_sources": ", ".join(sorted(train_src)), "eval_sources": ", ".join(sorted(eval_src))},
            "accuracy": {"ood_acc": env_mean(metrics, self.test_envs, "in"),
                         "val_acc": env_mean(metrics, self.train_envs, "out"),
                         **{k: v for k, v in metrics.items() if k.endswith("_acc")}},
            "loss": {**numeric_leaves(update_stats, "train_"),
                     **{k: v for k, v in metrics.items() if k.endswith("_loss")}},
            "energy": {"train_J": train_J, "eval_J": eval_J, "cum_train_J": self.cum_train_J,
                       "cum_eval_J": self.cum_eval_J, "cum_J": self.cum_train_J + self.cum_eval_J},
            "flops": {"train_flops": (record.get("flops") or {}).get("train", math.nan),
                      "eval_flops": (record.get("flops") or {}).get("eval", math.nan)},
            "gradsamp": numeric_leaves(record.get("sampler_stats"), "gradsamp_"),
        }
        averaged = record.get("averaged_metrics")
        if averaged:
            groups["averaged"] = {"averaged_ood_acc": env_mean(averaged, self.test_envs, "in"),
                                  "averaged_val_acc": env_mean(averaged, self.train_envs, "out")}
        if record.get("averager"):
            groups["averager"] = numeric_leaves(record["averager"], "averager_")
        return groups

    def row(self, record: dict) -> dict[str, Any]:
        """One flat row: every group's values side by side."""
        return {name: value for group in self.values(record).values() for name, value in group.items()}


def summary_values(summary: dict, test_envs: Iterable[int], train_envs: Iterable[int]) -> dict[str, float]:
    """The summary line's reported model (SWAD's final average) as numbers; empty when it has none."""
    metrics = summary.get("metrics")
    if not metrics:
        return {}
    return {"final_ood_acc": env_mean(metrics, test_envs, "in"), "final_val_acc": env_mean(metrics, train_envs, "out"),
            **{f"final_{k}": v for k, v in metrics.items() if k.endswith("_acc")}}
