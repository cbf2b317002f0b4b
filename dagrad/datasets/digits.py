"""Embedded benchmarks built from scikit-learn's bundled digits (1,797 8x8 images, 10 classes), so the
default runs need no download. As in DomainBed's RotatedMNIST, the images are shuffled once (fixed
seed) and dealt into disjoint environments, each transformed differently.

Startup matters here (the demo and the tests build these sets in every run): the digits are read from
scikit-learn's bundled CSV without importing scikit-learn, and rotated with torch's grid sampling
without importing torchvision; each import costs seconds, more than the whole data set."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from dagrad.datasets.base import DomainSuite, TensorEnvironment
from dagrad.datasets.specs import dataset_spec
from dagrad.utils.errors import ConfigError


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float64 in 0..16, labels) exactly as `sklearn.datasets.load_digits` gives them."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    csv = next((Path(d) / "datasets" / "data" / "digits.csv.gz" for d in locations
                if (Path(d) / "datasets" / "data" / "digits.csv.gz").is_file()), None)
    if csv is None:  # a scikit-learn that keeps its data elsewhere: ask it (slower to import)
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.images, data.target
    table = np.loadtxt(csv, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images (N, C, H, W) rotated counter-clockwise about their centre, bilinear, zeros outside.

    Each output pixel centre (x, y, 1), in pixel units about the image centre, is mapped back through
    the inverse rotation, scaled to grid_sample's [-1, 1] (align_corners=False) and sampled. The
    arithmetic follows torchvision's tensor `rotate(..., InterpolationMode.BILINEAR)` step by step
    (inverse matrix in float32, divided by the half-size, one batched matmul), so the images are
    bit-identical to what dagrad produced with torchvision (tested)."""
    n, _, h, w = images.shape
    a = math.radians(degrees)
    inverse = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=images.dtype)
    to_unit = inverse.t().unsqueeze(0) / torch.tensor([0.5 * w, 0.5 * h], dtype=images.dtype)
    centres = torch.ones(1, h, w, 3, dtype=images.dtype)
    centres[..., 0] = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, steps=w)
    centres[..., 1] = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, steps=h).unsqueeze(-1)
    grid = centres.view(1, h * w, 3).bmm(to_unit).view(1, h, w, 2)
    return F.grid_sample(images, grid.expand(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)


def _digits(size: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """All digits, shuffled, padded so rotation never clips a corner, and upsampled to size x size."""
    raw, target = load_digit_images()
    order = np.random.RandomState(seed).permutation(len(target))
    images = torch.tensor(raw[order], dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.pad(images, (2, 2, 2, 2))  # 8x8 -> 12x12: the 8x8 diagonal (11.3 px) fits in any rotation
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(0, 1), target[order].astype(np.int64)


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
    rotations = [lambda x, a=a: rotate(x, a) for a in angles]
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
