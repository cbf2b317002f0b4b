"""What a checkpoint must satisfy before a run resumes from it, beyond loading as plain data.

A checkpoint is data from disk: it may be edited, copied from another run or damaged. Before any of it
is used: its `epoch` must be where its own copy of the records ends (epochs 0 .. epoch-1, one line each,
within the run's epochs), the model's and optimizers' states must have this run's keys and shapes, and
the weights must be finite. Each failure is one CheckpointError line naming what disagrees, never
torch's own multi-line text, and never a run that trains on from a wrong epoch or NaN weights."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch

from dagrad.utils.errors import CheckpointError


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"cannot resume from {path}: {what}; `dagrad train --restart --out {path.parent}` "
                           f"moves this attempt aside and starts afresh")


def check_epoch(payload: Mapping[str, Any], path: Path, epochs: int) -> None:
    """The checkpoint's epoch agrees with the records it carries and lies within the run's epochs."""
    epoch, lines = payload["epoch"], payload["records"]
    if not 0 <= epoch <= epochs:
        raise _fail(path, f"its epoch {epoch} is outside this run's 0..{epochs}")
    if not lines or not isinstance(lines[0], dict) or lines[0].get("type") != "header":
        raise _fail(path, "its copy of the records has no header line")
    numbers = [line.get("epoch") for line in lines if isinstance(line, dict) and line.get("type") == "epoch"]
    if numbers != list(range(epoch)):
        shown = f"epochs {numbers[0]}..{numbers[-1]}" if numbers else "no epochs"
        raise _fail(path, f"its epoch is {epoch} but its copy of the records holds {shown} ({len(numbers)} "
                          f"line(s)); they must agree")
    updates = payload["updates"]
    recorded = next((line.get("updates") for line in reversed(lines)
                     if isinstance(line, dict) and line.get("type") == "epoch"), 0)
    if updates < 0 or (numbers and updates != recorded):
        raise _fail(path, f"it counts {updates} updates but its records end at {recorded}")


def _shape(value: Any) -> str:
    return "(" + ", ".join(map(str, value.shape)) + ")"


def check_state(saved: Any, expected: Mapping[str, Any], path: Path, what: str) -> None:
    """A model state `saved` has exactly the keys of `expected`, each tensor of the same shape, all finite."""
    if not isinstance(saved, dict):
        raise _fail(path, f"its {what} state is not a mapping")
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        name = missing[0] if missing else extra[0]
        raise _fail(path, f"its {what} state {'lacks' if missing else 'has an unknown'} entry {name!r}; it was "
                          f"written for another model")
    for key, want in expected.items():
        got = saved[key]
        if isinstance(want, torch.Tensor):
            if not isinstance(got, torch.Tensor):
                raise _fail(path, f"its {what} entry {key!r} is not a tensor")
            if got.shape != want.shape:
                raise _fail(path, f"its {what} entry {key!r} has shape {_shape(got)}, this run's model "
                                  f"{_shape(want)}; it was written for another model")
            if got.is_floating_point() and not bool(torch.isfinite(got).all()):
                raise _fail(path, f"its {what} entry {key!r} holds NaN or infinite values")


def check_optimizer(saved: Any, optimizer: torch.optim.Optimizer, path: Path, name: str) -> None:
    """An optimizer state fits `optimizer`: the same parameters, each per-parameter tensor of its shape."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
            or not isinstance(saved.get("param_groups"), list):
        raise _fail(path, f"its optimizer {name!r} state is malformed")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        ids = [i for group in saved["param_groups"] for i in group["params"]]
    except (TypeError, KeyError):
        raise _fail(path, f"its optimizer {name!r} state is malformed") from None
    if len(ids) != len(params) or len(saved["param_groups"]) != len(optimizer.param_groups):
        raise _fail(path, f"its optimizer {name!r} holds {len(ids)} parameters, this run's {len(params)}; it was "
                          f"written for another model")
    for index, param in zip(ids, params):
        state = saved["state"].get(index, {})
        if not isinstance(state, dict):
            raise _fail(path, f"its optimizer {name!r} state is malformed")
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                raise _fail(path, f"its optimizer {name!r} entry {key!r} has shape {_shape(value)}, the parameter "
                                  f"{_shape(param)}; it was written for another model")
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise _fail(path, f"its optimizer {name!r} entry {key!r} holds NaN or infinite values")
            if isinstance(value, float) and not math.isfinite(value):
                raise _fail(path, f"its optimizer {name!r} entry {key!r} is {value}")


def check_payload(payload: Mapping[str, Any], path: Path, epochs: int, algorithm: Any) -> None:
    """Everything above, for a Trainer about to restore `payload` into `algorithm`."""
    check_epoch(payload, path, epochs)
    check_state(payload.get("algorithm"), algorithm.state_dict(), path, "model")
    optimizers = payload.get("optimizers")
    if not isinstance(optimizers, dict):
        raise _fail(path, "it holds no optimizer states")
    for name, optimizer in algorithm.optimizers().items():
        if name not in optimizers:
            raise _fail(path, f"it holds no state for the optimizer {name!r}")
        check_optimizer(optimizers[name], optimizer, path, name)
