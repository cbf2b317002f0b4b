"""`dagrad predict`: class probabilities per image from a run's kept model, as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from dagrad.utils.atomic import write_text_atomic
from dagrad.models.loading import LoadedModel, load_model
from dagrad.models.scoring import logits_of
from dagrad.models.sources import Images, image_files


def predict_images(loaded: LoadedModel, files: list[Path], device: torch.device,
                   batch_size: int = 64) -> torch.Tensor:
    """Softmax probabilities (N, C) of the model for the image files, in order."""
    logits, _ = logits_of(loaded.model, Images(files, [-1] * len(files), loaded.transform), device, batch_size)
    return torch.softmax(logits, dim=1)


def predictions_csv(loaded: LoadedModel, files: list[Path], probs: torch.Tensor) -> str:
    """One row per image: the file, the predicted class, then the probability of every class."""
    classes = loaded.class_names or [str(i) for i in range(probs.shape[1])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "predicted", *classes])
    for path, row in zip(files, probs.tolist()):
        writer.writerow([str(path), classes[max(range(len(row)), key=row.__getitem__)], *(f"{p:.6g}" for p in row)])
    return out.getvalue()


def predict(run: Any, inputs: Sequence[str], which: str | int = "best", device: str = "cpu",
            out: Optional[str | Path] = None, plugins: Any = ()) -> tuple[str, torch.Tensor]:
    """The CSV text (also written to `out` when given) and the probabilities."""
    loaded = load_model(run, which, device=device, plugins=plugins)
    files = image_files(inputs)
    probs = predict_images(loaded, files, torch.device(device))
    text = predictions_csv(loaded, files, probs)
    if out is not None:
        write_text_atomic(out, text)
    return text, probs
