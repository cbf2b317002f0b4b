"""Tiny Fashion-MNIST file sets written by the tests: the publisher's four IDX files, gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dagrad.datasets.idx import idx_bytes

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def images_and_labels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images of 28x28 with ink in a class-dependent block (so every image has ink), balanced labels."""
    rng = np.random.RandomState(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for k, c in enumerate(labels):
        images[k, 4 + c: 14 + c, 6:22] = rng.randint(60, 256, (10, 16))
    return images, labels


def write_set(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0) -> Path:
    """The four files in `folder` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = images_and_labels(n, seed + (split == "test"))
        for stem, array in zip(NAMES[split], (images, labels)):
            write(folder / stem, idx_bytes(array), gz)
    return folder


def write(path: Path, data: bytes, gz: bool = True) -> Path:
    """`data` at `path` (+ .gz, gzipped, when gz)."""
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path
