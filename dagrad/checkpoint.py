"""Checkpoints: everything needed to continue a run exactly, written atomically after every epoch."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from dagrad.atomic import write_atomic
from dagrad.errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: str | Path, config_hash: str) -> dict[str, Any]:
    """The checkpoint's contents, or a CheckpointError that says what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot resume: no checkpoint at {path} (start the run without --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, wrong file: all the same to the user
        raise CheckpointError(
            f"cannot resume: checkpoint {path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}); "
            f"it is truncated or corrupted; delete the run directory's checkpoint.pt to restart from scratch"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume: {path} is not a dagrad checkpoint (format {FORMAT})")
    if payload.get("config_hash") != config_hash:
        raise CheckpointError(
            f"cannot resume: {path} was written by a different configuration "
            f"({payload.get('config_hash')} vs {config_hash}); resume with the run's own config"
        )
    return payload


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
