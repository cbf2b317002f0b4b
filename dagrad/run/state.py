"""A run's resumable state: what its checkpoint holds (model, optimizers, GradSamp, averager, random
streams, records, kept models) and putting it back into freshly built parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagrad.run.checkpoint import load_checkpoint, rng_state, set_rng_state
from dagrad.run.checkpoint_checks import check_payload
from dagrad.run.parts import RunParts
from dagrad.utils.errors import CheckpointError


def state_payload(parts: RunParts, run_id: str, next_epoch: int, updates: int, stopped: bool, records: list[dict],
                  kept: Any) -> dict:
    """The checkpoint's content after an epoch (`kept`: the kept models' state)."""
    algorithm = parts.algorithm
    return {
        "config_hash": run_id, "epoch": next_epoch, "updates": updates, "stopped": stopped,
        "algorithm": algorithm.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in algorithm.optimizers().items()},
        "gradsamp": parts.gradsamp.state_dict() if parts.gradsamp else None,
        "averager": parts.averager.state_dict() if parts.averager else None,
        "rng": rng_state(), "records": records, "kept": kept,
    }


def restore_state(path: Path, parts: RunParts, run_id: str, epochs: int, outputs: Any) -> dict:
    """Load the checkpoint at `path` into the parts (and the kept models' `outputs`) and the random streams;
    returns the payload (its epoch, updates, stopped flag and copy of the records)."""
    payload = load_checkpoint(path, run_id)
    algorithm = parts.algorithm
    check_payload(payload, path, epochs, algorithm)
    try:
        algorithm.load_state_dict(payload["algorithm"])
        for name, opt in algorithm.optimizers().items():
            opt.load_state_dict(payload["optimizers"][name])
        if parts.gradsamp is not None:
            parts.gradsamp.load_state_dict(payload["gradsamp"], algorithm)
        if parts.averager is not None:
            parts.averager.load_state_dict(payload["averager"])
        outputs.load_state_dict(payload.get("kept"))
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot resume from {path}: it does not match this run's model "
                              f"({state_problem(exc)})") from None
    set_rng_state(payload["rng"])
    return payload


def state_problem(exc: Exception) -> str:
    """torch's refusal of a state dict as one line: its first problem ("size mismatch for x: ..."), whole
    words, and how many more there are."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Error(s) in loading")] or lines or [type(exc).__name__]
    problems = [p.strip() for line in lines for p in line.split(". ") if p.strip()]
    first = problems[0].rstrip(".")
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0] + " ..."
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{first}{more}"
