"""Checkpoints: everything needed to continue a run exactly, written atomically after every epoch.

A checkpoint holds tensors, plain containers (dict, list, tuple) and plain values (numbers, strings,
booleans, None) only, RNG states included, and is read with `torch.load(weights_only=True)`: a file
from elsewhere (a shared sweep folder, a download) cannot run code when a run resumes from it. Saving
refuses anything else, naming where it sits, so an unloadable checkpoint is never written."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dagrad.utils.atomic import write_atomic
from dagrad.utils.errors import CheckpointError
from dagrad.utils.lazy import torch  # imported on first use: `dagrad status` names this file without loading torch

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 2  # 2: plain data only (weights_only), RNG states as lists and tensors, the run's records inside

_PLAIN = (int, float, str, bool, type(None))
#: the entries every checkpoint has, besides the components' states (checked before anything is used)
REQUIRED = {"epoch": int, "updates": int, "stopped": bool, "rng": dict, "records": list}


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    payload = {"format": FORMAT, **payload}
    check_plain(payload, "checkpoint")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))


def check_plain(value: Any, where: str) -> None:
    """Raise a CheckpointError naming the first value that weights_only loading would refuse."""
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN or isinstance(value, (torch.Size, torch.dtype)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) not in _PLAIN:
                raise CheckpointError(f"cannot save a checkpoint: {where} has a key of type {type(key).__name__}")
            check_plain(item, f"{where}.{key}")
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise CheckpointError(f"cannot save a checkpoint: {where} is a {type(value).__module__}.{type(value).__name__}; "
                          f"a component's state_dict() must hold tensors, lists, dicts and plain numbers only")


def _restart_hint(path: Path) -> str:
    return f"`dagrad train --restart --out {path.parent}` moves this attempt aside and starts afresh"


def load_checkpoint(path: str | Path, config_hash: str) -> dict[str, Any]:
    """The checkpoint's contents for the run `config_hash`, or a CheckpointError that says what is wrong and
    what to do."""
    payload = read_checkpoint(path)
    if payload.get("config_hash") != config_hash:
        raise CheckpointError(
            f"cannot resume: {path} was written by a different configuration "
            f"({payload.get('config_hash')} vs {config_hash}); resume with the run's own config"
        )
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A dagrad checkpoint's contents (plain data, loaded without running anything), whatever run wrote it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot resume: no checkpoint at {path} (start the run without --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, foreign pickle, wrong file: all the same to the user
        reason = "it holds objects other than tensors and plain data" \
            if zipfile.is_zipfile(path) and "weights only" in str(exc).lower() else "it is truncated or corrupted"
        raise CheckpointError(f"cannot resume: {path} is not a dagrad checkpoint ({reason}; nothing in it was run); "
                              f"{_restart_hint(path)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        why = f"format {found}, written by another dagrad version" if isinstance(found, int) else "no format field"
        raise CheckpointError(f"cannot resume: {path} is not a dagrad checkpoint of format {FORMAT} ({why}); "
                              f"{_restart_hint(path)}")
    for key, kind in REQUIRED.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"cannot resume: {path} lacks a valid {key!r} entry; {_restart_hint(path)}")
    return payload


def rng_state() -> dict[str, Any]:
    """Python's, numpy's and torch's global RNG states as plain lists and a tensor."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"python": [version, list(state), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    try:
        version, python, gauss = state["python"]
        name, keys, pos, has_gauss, cached = state["numpy"]
        random.setstate((int(version), tuple(int(v) for v in python), gauss))
        np.random.set_state((str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
        torch.set_rng_state(state["torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot resume: the checkpoint's RNG state is malformed "
                              f"({type(exc).__name__})") from None
