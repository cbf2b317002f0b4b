"""Embedded benchmarks built from scikit-learn's bundled digits (1,797 8x8 images, 10 classes), so the
default runs need no download. As in DomainBed's RotatedMNIST, the images are shuffled once (fixed
seed) and dealt into disjoint environments, each transformed differently."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from dagrad.datasets.base import DomainSuite, TensorEnvironment
from dagrad.datasets.specs import dataset_spec
from dagrad.errors import ConfigError



def _digits(size: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """All digits, shuffled, padded so rotation never clips a corner, and upsampled to size x size."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.RandomState(seed).permutation(len(data.target))
    images = torch.tensor(data.images[order], dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.pad(images, (2, 2, 2, 2))  # 8x8 -> 12x12: the 8x8 diagonal (11.3 px) fits in any rotation
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(0, 1), data.target[order].astype(np.int64)


def _suite(name: str, cfg: Any, env_names: list[str], transforms: list[Callable[[torch.Tensor], torch.Tensor]],
           seed: int) -> DomainSuite:
    size = cfg.image_size or dataset_spec(cfg.name).image_size
    images, labels = _digits(size, seed)
    chunks = np.array_split(np.arange(len(labels)), len(env_names))
    envs = [
        TensorEnvironment(env_name, transform(images[idx]).contiguous(), labels[idx])
        for env_name, transform, idx in zip(env_names, transforms, chunks)
    ]
    return DomainSuite(name, envs, 10, (1, size, size), class_names=[str(d) for d in range(10)])


def rotated_names(cfg: Any) -> list[str]:
    """rotated_digits' environment names, from its options alone."""
    return [f"rot{float(a):g}" for a in cfg.options["angles"]]


def rotated_digits(cfg: Any) -> DomainSuite:
    """One environment per angle (option `angles`, default 0, 15, ..., 75 degrees)."""
    opts = cfg.options
    angles = [float(a) for a in opts["angles"]]
    if len(angles) < 2:
        raise ConfigError("data.options.angles: give at least two angles (one environment per angle)")
    rotations = [lambda x, a=a: TF.rotate(x, a, interpolation=TF.InterpolationMode.BILINEAR) for a in angles]
    return _suite(cfg.name, cfg, rotated_names(cfg), rotations, int(opts["seed"]))


def _stroke(x: torch.Tensor, k: int) -> torch.Tensor:
    """Thicker (k > 0, dilation) or thinner (k < 0, erosion) strokes by a (2|k|+1)^2 max filter."""
    if k == 0:
        return x
    r = abs(k)
    pooled = F.max_pool2d(x if k > 0 else -x, 2 * r + 1, stride=1, padding=r)
    return pooled if k > 0 else -pooled


def stroke_names(cfg: Any) -> list[str]:
    """stroke_digits' environment names, from its options alone."""
    return [("erode" if k < 0 else "dilate") + str(abs(k)) if k else "plain" for k in map(int, cfg.options["strokes"])]


def stroke_digits(cfg: Any) -> DomainSuite:
    """Environments that differ in stroke width (option `strokes`: <0 erodes, >0 dilates, in pixels)."""
    opts = cfg.options
    strokes = [int(k) for k in opts["strokes"]]
    return _suite(cfg.name, cfg, stroke_names(cfg), [lambda x, k=k: _stroke(x, k) for k in strokes],
                  int(opts["seed"]))
