"""Scoring a kept model on named environments: accuracy, loss, per-class accuracy, expected calibration
error and the inference energy (the run's meter, one `inference` window per environment)."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dagrad.datasets.loading import to_device

ECE_BINS = 15  # the usual equal-width binning (Guo et al. 2017)


@torch.no_grad()
def logits_of(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64,
              workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32 logits (N, C) on the CPU, labels (N,)) of `model` over `dataset`, in order."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    outs, labels = [], []
    for x, y in loader:
        outs.append(model(to_device(x, device, False)).float().cpu())
        labels.append(torch.as_tensor(y))
    if not outs:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(outs), torch.cat(labels)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| x the bin's share of examples."""
    if not len(labels):
        return float("nan")
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).double()
    confidence = confidence.double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if inside.any():
            ece += float(inside.double().mean() * (correct[inside].mean() - confidence[inside].mean()).abs())
    return ece


def score(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, mean cross-entropy loss, per-class accuracy (None for classes absent here), ECE, n."""
    n = len(labels)
    if not n:
        return {"n": 0, "acc": float("nan"), "loss": float("nan"), "ece": float("nan"), "per_class_acc": {}}
    probs = torch.softmax(logits, dim=1)
    correct = logits.argmax(1) == labels
    per_class: dict[str, Optional[float]] = {}
    for k, name in enumerate(class_names or [str(i) for i in range(logits.shape[1])]):
        mask = labels == k
        per_class[name] = float(correct[mask].double().mean()) if mask.any() else None
    loss = F.cross_entropy(logits.double(), labels, reduction="mean")
    return {"n": n, "acc": float(correct.double().mean()), "loss": float(loss),
            "ece": expected_calibration_error(probs, labels), "per_class_acc": per_class}


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (true class, predicted class)."""
    index = labels * num_classes + logits.argmax(1)
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def score_envs(loaded: Any, envs: dict[str, Dataset], device: torch.device, energy_cfg: Any = None,
               batch_size: int = 64) -> list[dict]:
    """One row per environment: the scores and the energy the inference took (with its source)."""
    from dagrad.config.schema import EnergyConfig
    from dagrad.energy import build_meter, resolve_energy

    meter = build_meter(resolve_energy(energy_cfg or EnergyConfig()), str(device))
    rows = []
    try:
        for name, dataset in envs.items():
            with meter.window("inference") as reading:
                logits, labels = logits_of(loaded.model, dataset, device, batch_size)
            row = {"env": name, **score(logits, labels, loaded.class_names), "energy": reading.to_dict()}
            if len(labels):  # rows: true class, columns: predicted class, in the model's class order
                row["confusion"] = confusion_matrix(logits, labels, logits.shape[1]).tolist()
            joules = reading.joules
            row["joules_per_example"] = joules / row["n"] if joules is not None and row["n"] else None
            rows.append(row)
    finally:
        meter.close()
    return rows


def fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.1f}" if percent else f"{value:.3g}"
