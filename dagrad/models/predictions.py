"""Per-example predictions (`eval.save_predictions: true`), for WILDS-style per-group analysis: after
each epoch's evaluation, `predictions/epoch-N.csv` lists every evaluated example of every split with its
index in its environment, label, predicted class and the probability the model gave the label.

It is a second pass over the evaluation splits (the records' evaluation sums on the device and never
holds per-example outputs), so it costs about one more evaluation per epoch and is metered as `other`.
Off by default."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dagrad.utils.atomic import write_text_atomic
from dagrad.datasets.loading import to_device

PREDICTIONS_DIR = "predictions"
COLUMNS = ("split", "index", "label", "predicted", "prob_label")


@torch.no_grad()
def split_outputs(model: nn.Module, loader: Any, device: torch.device, numerics: Any = None) -> tuple:
    """(probabilities float32 (N, C), labels (N,)) of `model.predict` over a loader of (x, y, skipped)."""
    probs, labels = [], []
    channels_last = bool(numerics is not None and numerics.channels_last)
    for x, y, _ in loader:
        if numerics is not None:
            with numerics.autocast():
                logits = model.predict(to_device(x, device, channels_last))
        else:
            logits = model.predict(to_device(x, device, channels_last))
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        labels.append(y)
    if not probs:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(probs), torch.cat(labels)


class PredictionWriter:
    """Writes one CSV of per-example predictions per epoch (rank 0)."""

    def __init__(self, folder: Path, data: Any, device: torch.device, numerics: Any = None):
        self.dir = Path(folder) / PREDICTIONS_DIR
        self.data, self.device, self.numerics = data, device, numerics

    def after_epoch(self, epoch: int, module: nn.Module) -> Path:
        was_training = module.training
        module.eval()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        try:
            for name, split in self.data.eval_splits().items():
                loader = self.data._loader(split, batch_size=self.data.eval_batch_size, shuffle=False)
                probs, labels = split_outputs(module, loader, self.device, self.numerics)
                if not len(labels):
                    continue
                predicted = probs.argmax(1)
                of_label = probs.gather(1, labels.view(-1, 1)).squeeze(1)
                for index, label, pred, p in zip(split.indices.tolist(), labels.tolist(), predicted.tolist(),
                                                 of_label.tolist()):
                    writer.writerow((name, index, label, pred, f"{p:.6g}"))
        finally:
            module.train(was_training)
        path = self.dir / f"epoch-{epoch}.csv"
        write_text_atomic(path, out.getvalue())
        return path
