"""The optional loss guard: a fixed batch's cross-entropy before and after a draw, measured without side effects.

The guard runs the model in eval mode (restoring each submodule's mode afterwards), so BatchNorm running
statistics are not updated and dropout draws nothing from the global RNG: checking a draw never changes
the model or the run's randomness. The losses stay on the device until the caller reads both at once.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

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
