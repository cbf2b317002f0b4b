"""The optional loss guard: a fixed batch's cross-entropy before and after a draw, measured without side effects.

The guard runs the model in eval mode (restoring each submodule's mode afterwards), so BatchNorm running
statistics are not updated and dropout draws nothing from the global RNG: checking a draw never changes
the model or the run's randomness. The losses stay on the device until the caller reads both at once.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode for the block, then restore each one's own training flag."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def loss(predict: Callable[[Tensor], Tensor], batch: tuple[Tensor, Tensor], device: torch.device) -> Tensor:
    """Mean cross-entropy of predict(x) against labels y, as a 0-dim float32 tensor left on the device.

    Left unread so the caller can read the losses before and after a draw in one transfer (one sync).
    """
    x, y = batch
    with torch.no_grad():
        logits = predict(x.to(device))
        return F.cross_entropy(logits.float(), y.to(logits.device).long())


def batch_loss(predict: Callable[[Tensor], Tensor], batch: tuple[Tensor, Tensor], device: torch.device) -> float:
    """``loss`` read as a Python float (may be inf/nan)."""
    return float(loss(predict, batch, device))


def rejects(before: float, after: float, tolerance: float) -> bool:
    """True if the draw made the loss worse than allowed: after > before * (1 + tolerance), or after not finite.

    A non-finite ``before`` gives the guard nothing to compare against, so only a non-finite ``after`` rejects.
    """
    if not math.isfinite(after):
        return True
    if not math.isfinite(before):
        return False
    return after > before * (1.0 + tolerance)


def guarded(module: nn.Module, predict: Callable[[Tensor], Tensor], batch: tuple[Tensor, Tensor],
            device: torch.device, apply: Callable[[], None], undo: Callable[[], None], tolerance: float,
            meter: Any, stats: dict[str, Any]) -> str | None:
    """``apply`` a draw, keep it only if the batch loss did not rise beyond ``tolerance``, else ``undo`` it.

    Both losses are read in one transfer (one host sync); the check is metered as the window 'guard' when
    a meter is given. Returns the reason for a rejection, or None; ``stats`` gets the losses and verdict.
    """
    window = meter.window("guard") if meter is not None else contextlib.nullcontext()
    with window as reading, eval_mode(module):
        before = loss(predict, batch, device)
        apply()
        after = loss(predict, batch, device)
        before_f, after_f = torch.stack([before, after.to(before.device)]).tolist()
    if meter is not None:
        stats["guard_energy"] = reading.to_dict()
    stats.update(guard_loss_before=before_f, guard_loss_after=after_f, guard_tolerance=tolerance)
    if rejects(before_f, after_f, tolerance):
        undo()
        stats["guard"] = "rejected"
        return f"guard: loss {after_f:.6g} > {before_f:.6g} * (1 + {tolerance:g})"
    stats["guard"] = "accepted"
    return None
