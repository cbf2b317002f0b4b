"""Accuracy and loss of a model on every evaluation split, as DomainBed logs them per checkpoint.

One loader decodes every split (one worker pool, batches never mixing splits). Correct predictions and
summed losses accumulate on the model's device and are read once per evaluation, so the GPU never
waits for the host between batches. The loss sum is kept in float64 from each batch's float32 sum,
which is exactly what adding the batches' `.item()` values on the host used to give. Under multi-process
training each process evaluates its share of the batches (the same batches, each on one process) and the
float64 totals are summed over the processes, so accuracy is exactly the single-process accuracy."""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from dagrad.datasets.loading import EvalLoader, to_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: EvalLoader, device: torch.device, flops: Optional[object] = None,
             numerics: Optional[object] = None) -> tuple[dict[str, float], float]:
    """({'<split>_acc': ..., '<split>_loss': ...}, FLOPs spent). `model` must have `predict(x)`;
    `numerics` (a dagrad.run.numerics.Numerics) gives the autocast context and the input layout."""
    was_training = model.training
    model.eval()
    n_splits = len(loader.names)
    correct = torch.zeros(n_splits, dtype=torch.int64, device=device)
    loss = torch.zeros(n_splits, dtype=torch.float64, device=device)
    seen = [0] * n_splits
    total_flops = 0.0
    channels_last = bool(numerics is not None and numerics.channels_last)
    autocast = numerics.autocast if numerics is not None else contextlib.nullcontext
    try:
        for k, (x, y, _) in loader:
            x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
            with autocast():
                logits, f = _run(flops, ("eval", tuple(x.shape)), lambda: model.predict(x))
                batch_loss = F.cross_entropy(logits, y, reduction="sum")
            total_flops += f
            loss.select(0, k).add_(batch_loss)  # float32 sum added in float64, one kernel, no wait
            correct.select(0, k).add_((logits.argmax(1) == y).sum())
            seen[k] += len(y)
        totals = torch.stack([correct.double(), loss, torch.tensor(seen, dtype=torch.float64).to(device)])
        sums = loader.combine(totals).tolist()  # the one read of the evaluation (summed over processes)
    finally:
        model.train(was_training)
    metrics: dict[str, float] = {}
    for k, name in enumerate(loader.names):
        n = sums[2][k]
        metrics[f"{name}_acc"] = sums[0][k] / n if n else float("nan")
        metrics[f"{name}_loss"] = sums[1][k] / n if n else float("nan")
    return metrics, total_flops


def _run(flops: Optional[object], key: tuple, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    if flops is None:
        return fn(), 0.0
    return flops.run(key, fn)  # type: ignore[attr-defined]
