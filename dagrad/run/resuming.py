"""Resuming a run from its folder alone: the record file's header holds the config as it was given.

`recorded_config(folder)` is that config (what `dagrad train --resume --out DIR` starts from). A config
given as well (files, overrides, a dict) must resolve to the same experiment identity as the recorded
run; `check_same_run` otherwise names the keys that differ, in one line. Keys that only say where a run
executes (`config.RUN_ENVIRONMENT_KEYS`: device, data.root, tracking, ...) may change on resume.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Optional

from dagrad.config.schema import RUN_ENVIRONMENT_KEYS, without_keys
from dagrad.run.checkpoint import CHECKPOINT_NAME, read_checkpoint
from dagrad.utils.errors import CheckpointError, ConfigError, RecordsError
from dagrad.config.experiment import Experiment, experiment_from_dict
from dagrad.records.files import RECORDS_NAME, read_records

SHOWN_DIFFERENCES = 4


def recorded_header(folder: str | Path) -> dict:
    """The header line of the run in `folder`: from its record file, or, when that is gone or damaged, from
    the copy of the records its checkpoint holds (a CheckpointError when there is no run to resume)."""
    path = Path(folder) / RECORDS_NAME
    try:
        lines = read_records(path) if path.is_file() else None
    except RecordsError:
        lines = None
    if lines is None and (Path(folder) / CHECKPOINT_NAME).is_file():
        lines = read_checkpoint(Path(folder) / CHECKPOINT_NAME)["records"]
    if lines is None:
        raise CheckpointError(f"cannot resume: {folder} holds no run (no {RECORDS_NAME} or {CHECKPOINT_NAME}); "
                              f"start it without --resume")
    if not lines or lines[0]["type"] != "header" or not isinstance(lines[0].get("config"), dict):
        raise CheckpointError(f"{path}: no header with the run's config; the record file does not belong to a "
                              "dagrad run")
    return lines[0]


def recorded_config(folder: str | Path) -> dict:
    """The config the run in `folder` was started with, as plain data."""
    return recorded_header(folder)["config"]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def differences(recorded: dict, given: dict) -> list[str]:
    """`key: recorded -> given` for each setting of two canonical configs that differs (identity keys only)."""
    a = _flat(without_keys(recorded, RUN_ENVIRONMENT_KEYS))
    b = _flat(without_keys(given, RUN_ENVIRONMENT_KEYS))
    missing = object()
    return [f"{key}: {_short(a.get(key))} -> {_short(b.get(key))}" for key in sorted(set(a) | set(b))
            if a.get(key, missing) != b.get(key, missing)]


def check_same_run(folder: str | Path, given: Experiment, header: Optional[dict] = None) -> Experiment:
    """`given` when it is the experiment recorded in `folder` (whose header, `recorded_header(folder)`, may
    be given when read already); else a ConfigError naming what differs."""
    header = recorded_header(folder) if header is None else header
    own = experiment_from_dict(header["config"])
    recorded_id = header.get("run_id") or own.run_id
    resolved = header.get("resolved") or own.canonical()
    if own.run_id != recorded_id:  # no config resumes it: the records' config is not the run's any more
        diff = differences(resolved, own.canonical())
        why = (f"its header's config differs from the run it records: {'; '.join(diff[:SHOWN_DIFFERENCES])} "
               "(recorded run -> header config)" if diff else "the run was made by another dagrad version")
        raise ConfigError(f"{folder} cannot be resumed: {why}; start it afresh with `dagrad train --restart "
                          f"--out {shlex.quote(str(folder))}` (the attempt is moved aside, nothing is deleted)")
    if given.run_id == recorded_id:
        return given
    diff = differences(resolved, given.canonical()) or ["(the recorded run was made by another dagrad version)"]
    more = f"; and {len(diff) - SHOWN_DIFFERENCES} more" if len(diff) > SHOWN_DIFFERENCES else ""
    raise ConfigError(f"{folder} holds run {recorded_id}, but the config given is run {given.run_id}: "
                      f"{'; '.join(diff[:SHOWN_DIFFERENCES])}{more} (recorded -> given); to continue the "
                      f"recorded run, resume it without a config: {resume_command(folder)}")


def resume_command(folder: str | Path, plugins: list[str] = ()) -> str:
    """The shell command that continues the run in `folder` (naming the plugins its config imports, whose
    import needs the user's consent again)."""
    consent = "".join(f" --plugin {shlex.quote(p)}" for p in plugins)
    return f"dagrad train --resume --out {shlex.quote(str(folder))}{consent}"
