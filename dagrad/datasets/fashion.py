"""Fashion-MNIST (Xiao et al. 2017: 70,000 28x28 grayscale photographs of clothing, 10 classes) and
DomainBed's two MNIST constructions applied to it.

The four IDX files (gzipped or not) are looked for, in order, in `<data.root>/fashion_mnist/`, in
`data.root` itself, and in `/usr/share/datasets/fashion-mnist/` (Debian's `dataset-fashion-mnist`);
`dagrad data download fashion_mnist --root DIR` puts the publisher's files in the first place.

- `fashion_mnist`: the publisher's two splits as environments `train` (60,000) and `test` (10,000).
- `rotated_fashion_mnist`: DomainBed's RotatedMNIST: all 70,000 images (train then test) shuffled once
  (option `seed`), dealt round-robin (image k to environment k mod 6) and rotated by 0, 15, ..., 75
  degrees, bilinear, zeros outside, 8-bit like the PIL images DomainBed rotates.
- `colored_fashion_mnist`: DomainBed's ColoredMNIST: dealt round-robin into three environments; the
  binary label is 1 for the classes in `positive_classes` (default 0-4: T-shirt/top, Trouser, Pullover,
  Dress, Coat; DomainBed's `digit < 5`), flipped with probability `label_noise` (0.25); the colour is the
  label flipped with the environment's probability (0.1, 0.2, 0.9), drawn as which of two channels
  keeps the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from dagrad.datasets.base import DomainSuite, TensorEnvironment
from dagrad.datasets.idx import read_idx
from dagrad.utils.errors import ConfigError, DataError
from dagrad.utils.seeding import generator

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DIRECTORY = "fashion_mnist"
#: split -> (images file, labels file), the publisher's names (without .gz)
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SIZE = 28


class ByteEnvironment(TensorEnvironment):
    """Images held as 8-bit values (a quarter of float32's memory), given out as floats in [0, 1]."""

    def load(self, index: int) -> torch.Tensor:
        return self.inputs[index].float().div_(255.0)

    def load_many(self, indices: Sequence[int]) -> torch.Tensor:
        return super().load_many(indices).float().div_(255.0)


def candidates(root: Optional[str | Path]) -> list[Path]:
    """The folders searched for the IDX files, in order."""
    places = [Path(root).expanduser() / DIRECTORY, Path(root).expanduser()] if root else []
    return places + [DEBIAN_DIR]


def file_path(directory: Path, stem: str) -> Optional[Path]:
    """`stem` or `stem.gz` in `directory` (the uncompressed one first), or None."""
    return next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)


def locate(root: Optional[str | Path]) -> Path:
    """The first folder holding the four files; a folder holding only some of them is an error."""
    for directory in candidates(root):
        present = [stem for pair in FILES.values() for stem in pair if file_path(directory, stem)]
        if len(present) == 4:
            return directory
        if present:
            missing = [s for pair in FILES.values() for s in pair if s not in present]
            raise DataError(f"{directory} holds only some Fashion-MNIST files; missing: {', '.join(missing)} "
                            f"(.gz or not)")
    where = ", ".join(str(p) for p in candidates(root))
    raise DataError(f"Fashion-MNIST not found (looked in {where}); install Debian's dataset-fashion-mnist "
                    f"(apt-get install dataset-fashion-mnist) or run `dagrad data download fashion_mnist --root DIR` "
                    f"and set data.root=DIR")


def read_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of one split, checked against each other."""
    image_path, label_path = (file_path(directory, stem) for stem in FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise DataError(f"{image_path}: expected 8-bit images of {SIZE}x{SIZE}, found {images.dtype} of shape "
                        f"{images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{label_path}: expected a list of 8-bit labels, found {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{split}: {len(images):,} images but {len(labels):,} labels "
                        f"({image_path.name}, {label_path.name}); the counts must match")
    if len(labels) and labels.max() >= len(CLASSES):
        raise DataError(f"{label_path}: label {int(labels.max())} found; Fashion-MNIST's labels are 0-9")
    return images, labels.astype(np.int64)


def read_all(root: Optional[str | Path]) -> tuple[Path, np.ndarray, np.ndarray]:
    """(folder, all images, all labels): training split first, then test, as DomainBed concatenates them."""
    directory = locate(root)
    train, test = read_split(directory, "train"), read_split(directory, "test")
    return directory, np.concatenate([train[0], test[0]]), np.concatenate([train[1], test[1]])


def _dealt(cfg: Any, n_envs: int) -> tuple[Path, list[tuple[torch.Tensor, np.ndarray]]]:
    """All images shuffled by `seed` and dealt round-robin into `n_envs` environments, each optionally cut to
    its first `max_per_environment` images; images as (N, 1, 28, 28) uint8 tensors."""
    directory, images, labels = read_all(cfg.root)
    order = torch.randperm(len(labels), generator=generator(int(cfg.options["seed"]), "fashion_mnist")).numpy()
    images, labels = torch.from_numpy(images[order]).unsqueeze(1), labels[order]
    limit = cfg.options.get("max_per_environment")
    envs = []
    for i in range(n_envs):
        x, y = images[i::n_envs], labels[i::n_envs]
        envs.append((x[:limit], y[:limit]) if limit else (x, y))
    return directory, envs


def _check_size(cfg: Any) -> None:
    if cfg.image_size not in (None, SIZE):
        raise ConfigError(f"data.image_size: {cfg.name} is {SIZE}x{SIZE} as published; leave it unset or {SIZE}")


def fashion_mnist(cfg: Any) -> DomainSuite:
    """The publisher's splits as two environments, `train` and `test`."""
    _check_size(cfg)
    directory = locate(cfg.root)
    envs = [ByteEnvironment(split, torch.from_numpy(x).unsqueeze(1), y)
            for split, (x, y) in ((s, read_split(directory, s)) for s in FILES)]
    return DomainSuite(cfg.name, envs, 10, (1, SIZE, SIZE), class_names=list(CLASSES), notes={"files": str(directory)})


def rotated_names(cfg: Any) -> list[str]:
    """rotated_fashion_mnist's environment names (DomainBed's: the angle), from its options alone."""
    return [f"{float(a):g}" for a in cfg.options["angles"]]


def rotated_fashion_mnist(cfg: Any) -> DomainSuite:
    """One environment per angle, DomainBed's RotatedMNIST construction on Fashion-MNIST."""
    from dagrad.datasets.digits import rotate

    _check_size(cfg)
    angles = [float(a) for a in cfg.options["angles"]]
    if len(angles) < 2:
        raise ConfigError("data.options.angles: give at least two angles (one environment per angle)")
    directory, dealt = _dealt(cfg, len(angles))
    envs = []
    for name, angle, (x, y) in zip(rotated_names(cfg), angles, dealt):
        turned = rotate(x.float(), angle).round_().clamp_(0, 255).to(torch.uint8) if angle else x.clone()
        envs.append(ByteEnvironment(name, turned.contiguous(), y))
    return DomainSuite(cfg.name, envs, 10, (1, SIZE, SIZE), class_names=list(CLASSES), notes={"files": str(directory)})


def colored_names(cfg: Any) -> list[str]:
    """colored_fashion_mnist's environment names, DomainBed's: the colour-label correlation (+90%, +80%, -90%)."""
    return [f"+{(1 - e) * 100:g}%" if e <= 0.5 else f"-{e * 100:g}%" for e in map(float, cfg.options["colors"])]


class ColoredEnvironment(ByteEnvironment):
    """A ColoredFashionMNIST environment; keeps the original class and the drawn colour of every image."""

    def __init__(self, name: str, inputs: torch.Tensor, labels: np.ndarray, classes: np.ndarray, colors: np.ndarray):
        super().__init__(name, inputs, labels)
        self.classes, self.colors = classes, colors


def colored_fashion_mnist(cfg: Any) -> DomainSuite:
    """One environment per colour-flip probability, DomainBed's ColoredMNIST construction on Fashion-MNIST."""
    _check_size(cfg)
    opts = cfg.options
    flips = [float(e) for e in opts["colors"]]
    positive = sorted({int(c) for c in opts["positive_classes"]})
    if len(flips) < 2 or not all(0.0 <= e <= 1.0 for e in flips):
        raise ConfigError("data.options.colors: give at least two colour-flip probabilities, each in [0, 1]")
    if not positive or positive[0] < 0 or positive[-1] >= len(CLASSES) or len(positive) == len(CLASSES):
        raise ConfigError("data.options.positive_classes: give some, not all, of the classes 0-9 (label 1)")
    directory, dealt = _dealt(cfg, len(flips))
    envs = []
    for i, (name, flip, (x, y)) in enumerate(zip(colored_names(cfg), flips, dealt)):
        g = generator(int(opts["seed"]), "colored_fashion_mnist", i)
        label = torch.from_numpy(np.isin(y, positive).astype(np.int64))
        label ^= (torch.rand(len(label), generator=g) < float(opts["label_noise"])).long()
        color = label ^ (torch.rand(len(label), generator=g) < flip).long()
        images = x.repeat(1, 2, 1, 1)
        images[torch.arange(len(images)), 1 - color] = 0  # the image stays in channel `color`
        envs.append(ColoredEnvironment(name, images.contiguous(), label.numpy(), y, color.numpy()))
    class_names = [f"not {{{','.join(map(str, positive))}}}", f"classes {{{','.join(map(str, positive))}}}"]
    return DomainSuite(cfg.name, envs, 2, (2, SIZE, SIZE), class_names=class_names, notes={"files": str(directory)})
