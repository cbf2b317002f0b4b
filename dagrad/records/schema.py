"""The shape every record line must have before anything reads it.

A record file is data from disk: it may have been edited, cut, or written by another version. Each
line is checked here against the fields the readers use (tables, plots, the API, resume), so a line
that is valid JSON but malformed (`"energy": NaN`, no `metrics`, an accuracy of `"x"` or 5.0) is a
`RecordsError` naming the file, the line and the field, never a KeyError deep in a report. Unknown
extra fields are allowed (newer writers may add some); a header of an unknown format version is
refused, since its lines may mean something else."""

from __future__ import annotations

import math
from typing import Any, Optional

#: the record formats this version reads (1: before `resolved` was written; 2: now)
READABLE_FORMATS = (1, 2)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(_count(v) for v in value)


def metrics_problem(metrics: Any, where: str) -> Optional[str]:
    """What is wrong with a metrics mapping (name -> number or null; accuracies within [0, 1])."""
    if not isinstance(metrics, dict):
        return f"{where} must be a mapping of numbers, got {type(metrics).__name__}"
    for name, value in metrics.items():
        if value is None:
            continue
        if not _number(value):
            return f"{where}.{name} must be a number, got {type(value).__name__}"
        if name.endswith("acc") and math.isfinite(value) and not 0.0 <= value <= 1.0:
            return f"{where}.{name} is {value!r}; an accuracy is a fraction between 0 and 1"
    return None


def reading_problem(reading: Any, where: str) -> Optional[str]:
    """What is wrong with a stored meter Reading (null, or components of joules >= 0 or null)."""
    if reading is None:
        return None
    if not isinstance(reading, dict):
        return f"{where} must be a meter reading (a mapping), got {type(reading).__name__}"
    components = reading.get("components", {})
    if not isinstance(components, dict):
        return f"{where}.components must be a mapping"
    for name, part in components.items():
        if not isinstance(part, dict):
            return f"{where}.components.{name} must be a mapping"
        joules = part.get("joules")
        if joules is not None and not (_number(joules) and math.isfinite(joules) and joules >= 0):
            return f"{where}.components.{name}.joules must be a finite number >= 0 or null, got {joules!r}"[:160]
        if not isinstance(part.get("source", ""), str):
            return f"{where}.components.{name}.source must be text"
    for key in ("seconds", "joules", "cpu_seconds"):
        value = reading.get(key)
        if value is not None and not (_number(value) and math.isfinite(value)):
            return f"{where}.{key} must be a finite number or null"
    return None


def _header_problem(line: dict) -> Optional[str]:
    version = line.get("format", 1)
    if not _count(version):
        return f"format must be a version number, got {version!r}"[:120]
    if version not in READABLE_FORMATS:
        return (f"records format {version} is not one this dagrad reads ({', '.join(map(str, READABLE_FORMATS))}); "
                f"a newer dagrad wrote it: upgrade dagrad to read it")
    if "config" in line and not isinstance(line["config"], dict):
        return "config must be a mapping"
    data = line.get("data", {})
    if not isinstance(data, dict):
        return "data must be a mapping"
    for key in ("test_envs", "train_envs"):
        if key in data and not _ints(data[key]):
            return f"data.{key} must be a list of environment indices"
    if "environments" in data and not (isinstance(data["environments"], list)
                                       and all(isinstance(e, str) for e in data["environments"])):
        return "data.environments must be a list of names"
    for key in ("resolved", "hparams", "numerics"):
        if line.get(key) is not None and not isinstance(line[key], dict):
            return f"{key} must be a mapping"
    return None


def _epoch_problem(line: dict) -> Optional[str]:
    for key in ("epoch", "step", "updates"):
        if not _count(line.get(key)):
            return f"{key} must be an integer >= 0, got {line.get(key)!r}"[:120]
    if (problem := metrics_problem(line.get("metrics"), "metrics")) is not None:
        return problem
    if line.get("averaged_metrics") is not None:
        if (problem := metrics_problem(line["averaged_metrics"], "averaged_metrics")) is not None:
            return problem
    energy = line.get("energy", {})
    if not isinstance(energy, dict):
        return f"energy must be a mapping of meter readings, got {type(energy).__name__}"
    for phase, reading in energy.items():
        if (problem := reading_problem(reading, f"energy.{phase}")) is not None:
            return problem
    seconds = line.get("seconds", 0.0)
    if not (_number(seconds) and math.isfinite(seconds) and seconds >= 0):
        return f"seconds must be a finite number >= 0, got {seconds!r}"[:120]
    return None


def _summary_problem(line: dict) -> Optional[str]:
    if line.get("metrics") is not None:
        if (problem := metrics_problem(line["metrics"], "metrics")) is not None:
            return problem
    if "updates" in line and not _count(line["updates"]):
        return "updates must be an integer >= 0"
    if not isinstance(line.get("reported", ""), str):
        return "reported must be text"
    for key in ("run_energy", "other_energy", "averaging_energy", "final_eval_energy"):
        if (problem := reading_problem(line.get(key), key)) is not None:
            return problem
    return None


_CHECKS = {"header": _header_problem, "epoch": _epoch_problem, "summary": _summary_problem}


def record_problem(line: dict) -> Optional[str]:
    """What is wrong with one record line (a dict with a `type`), or None when it has the record shape.
    Lines of other types are left alone (a newer writer's additions)."""
    check = _CHECKS.get(line.get("type"))
    return check(line) if check else None
