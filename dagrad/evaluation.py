"""Accuracy and loss of a model on every evaluation split, as DomainBed logs them per checkpoint."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def evaluate(model: nn.Module, loaders: dict[str, DataLoader], device: torch.device,
             flops: Optional[object] = None) -> tuple[dict[str, float], float]:
    """({'<split>_acc': ..., '<split>_loss': ...}, FLOPs spent). `model` must have `predict(x)`."""
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    total_flops = 0.0
    try:
        for name, loader in loaders.items():
            correct = n = 0
            loss = 0.0
            for x, y, _ in loader:
                x, y = x.to(device), y.to(device)
                logits, f = _run(flops, ("eval", tuple(x.shape)), lambda: model.predict(x))
                total_flops += f
                loss += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
                n += len(y)
            metrics[f"{name}_acc"] = correct / n if n else float("nan")
            metrics[f"{name}_loss"] = loss / n if n else float("nan")
    finally:
        model.train(was_training)
    return metrics, total_flops


def _run(flops: Optional[object], key: tuple, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    if flops is None:
        return fn(), 0.0
    return flops.run(key, fn)  # type: ignore[attr-defined]
