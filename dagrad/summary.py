"""Per-run figures read from records: what a table row needs (final OOD accuracy, training-domain
validation accuracy, energy by phase with its sources, time). Nothing here is typed in by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from dagrad.records import read_records, split_run


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (std / sqrt(n), sample std), as DomainBed's tables report."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def energy_joules(reading: Optional[dict]) -> tuple[Optional[float], list[str]]:
    """Total joules of a stored Reading and the sources it was summed over (None if none was readable)."""
    if not reading:
        return None, []
    parts = [c for c in reading.get("components", {}).values() if c.get("joules") is not None]
    if not parts:
        return None, []
    return sum(c["joules"] for c in parts), sorted({c["source"] for c in parts})


def _env_mean(metrics: dict, envs: list[int], split: str) -> float:
    values = [metrics.get(f"env{i}_{split}_acc") for i in envs]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def summarize_run(path: str | Path) -> dict[str, Any]:
    """The final model's OOD accuracy (mean over test envs' `in` splits) and the run's costs."""
    header, epochs, summary = split_run(read_records(path))
    data = header.get("data", {})
    test_envs, train_envs = data.get("test_envs", []), data.get("train_envs", [])
    final = (summary or {}).get("metrics") or (epochs[-1]["metrics"] if epochs else {})
    totals: dict[str, float] = {"train": 0.0, "eval": 0.0}
    sources: dict[str, set] = {"train": set(), "eval": set()}
    for record in epochs:
        for phase in totals:
            joules, srcs = energy_joules(record["energy"][phase])
            totals[phase] += joules or 0.0
            sources[phase].update(srcs)
    if summary and summary.get("final_eval_energy"):
        joules, srcs = energy_joules(summary["final_eval_energy"])
        totals["eval"] += joules or 0.0
        sources["eval"].update(srcs)
    return {
        "path": str(path), "config": header.get("config", {}), "seed": header.get("seed"),
        "ood_acc": _env_mean(final, test_envs, "in"), "val_acc": _env_mean(final, train_envs, "out"),
        "train_J": totals["train"], "eval_J": totals["eval"],
        "train_sources": sorted(sources["train"]), "eval_sources": sorted(sources["eval"]),
        "seconds": sum(r.get("seconds", 0.0) for r in epochs),
        "epochs": len(epochs), "kinds": [r["kind"] for r in epochs],
        "updates": epochs[-1]["updates"] if epochs else 0,
        "test_env_names": [data.get("environments", [])[i] for i in test_envs if i < len(data.get("environments", []))],
        "train_flops": sum(r["flops"]["train"] for r in epochs),
        "curve": [_env_mean(r["metrics"], test_envs, "in") for r in epochs],
        "reported": (summary or {}).get("reported", "online"),
    }
