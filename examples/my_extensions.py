"""Extending dagrad without touching dagrad/: one file that registers a GradSamp sampler, a schedule, a
dataset, an energy backend, a network and a sweep launcher, each the way the built-ins register.

    dagrad train --plugin examples/my_extensions.py data.name=tiny_shapes data.root=/tmp/shapes \\
        network.name=tiny_mlp gradsamp.sampler=laplace gradsamp.schedule=fibonacci energy.backend=constant_power
    dagrad sweep --plugin examples/my_extensions.py -c my_sweep.yaml --launcher shuffled
    dagrad list samplers --plugin examples/my_extensions.py

Each component declares its options once (default, type, valid range) in its registry entry; dagrad checks
configs against them, `dagrad list` and `dagrad data list` describe them, and the report pairs the
`laplace` sampler with its `skip` control like any built-in sampler.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from dagrad.extend import (BACKENDS, LAUNCHERS, NETWORKS, SAMPLERS, SCALE, SCHEDULES, ComponentEnergy, DatasetSpec,
                           JobResult, Layout, LocalLauncher, MeterContext, Moments, Option, Progress, Sampler,
                           Schedule, data_root, register_dataset, suite_from_tree)


# --- a sampler: per tensor, a Laplace step with Delta's mean and standard deviation (heavier tails) ------------
class Laplace(Sampler):
    """Every element of a tensor's step ~ Laplace(mean Delta, b) with 2 b^2 = var Delta: the `tensor` reading
    with heavier tails. Drawn on the parameters' device from the run's generator, like the built-ins."""

    name = "laplace"

    def fit_flat(self, delta: torch.Tensor, layout: Layout, moments: Moments | None = None) -> dict:
        m = moments or Moments(delta, layout)
        return {"mu": m.mean, "sigma": m.std}

    def _draw(self, delta: torch.Tensor, layout: Layout, fit: dict, generator: torch.Generator,
              finish: bool) -> torch.Tensor:
        u = torch.rand(delta.shape, generator=generator, dtype=delta.dtype, device=delta.device) - 0.5
        tail = (1 - 2 * u.abs()).clamp_min(torch.finfo(delta.dtype).tiny)
        unit = -torch.sign(u) * torch.log(tail) / math.sqrt(2)  # Laplace with variance 1
        return layout.affine_(unit, fit["sigma"].to(delta.dtype), fit["mu"].to(delta.dtype))


SAMPLERS.register("laplace", Laplace, options={"scale": SCALE})


# --- a schedule: sample the Fibonacci epochs (2, 3, 5, 8, 13, ...), ever sparser as training settles -------
class Fibonacci(Schedule):
    """Samples epoch e when e - offset is a Fibonacci number >= 2, so sampled epochs thin out over training."""

    name = "fibonacci"

    def __init__(self, offset: int = 0, max_consecutive: int | None = None, seed: int = 0) -> None:
        super().__init__(max_consecutive, seed)
        self.offset = int(offset)

    def wants(self, epoch: int) -> bool:
        n, a, b = epoch - self.offset, 2, 3
        while a < n:
            a, b = b, a + b
        return a == n

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "offset": self.offset}


SCHEDULES.register("fibonacci", Fibonacci, options={
    "offset": Option(0, int, "shift of the sequence: epochs offset + 2, offset + 3, offset + 5, ...", low=0)})


# --- a dataset: three brightness environments of circles and squares, written on first use ------------------
ENVIRONMENTS = ("dark", "dim", "light")
CLASSES = ("circle", "square")


def write_shapes(root: Path, per_class: int, seed: int = 0) -> None:
    """ROOT/tiny_shapes/<environment>/<class>/<i>.png: 16x16 RGB shapes on a background whose brightness
    is the environment (the domain shift), placed and sized at random."""
    rng = np.random.RandomState(seed)
    for k, env in enumerate(ENVIRONMENTS):
        background = 40 + 80 * k
        for cls in CLASSES:
            folder = root / "tiny_shapes" / env / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = np.full((16, 16, 3), background, dtype=np.uint8)
                r, cy, cx = rng.randint(3, 6), rng.randint(5, 11), rng.randint(5, 11)
                yy, xx = np.mgrid[:16, :16]
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if cls == "circle" else \
                    (abs(yy - cy) <= r - 1) & (abs(xx - cx) <= r - 1)
                image[mask] = 255 - background
                Image.fromarray(image).save(folder / f"{i}.png")


def tiny_shapes(cfg: Any):
    """The suite for `data.name: tiny_shapes`; the images are written under data.root if absent."""
    root = data_root(cfg)
    if not (root / "tiny_shapes").is_dir():
        write_shapes(root, cfg.options["per_class"], cfg.options["seed"])
    return suite_from_tree(cfg.name, root / "tiny_shapes", list(ENVIRONMENTS), cfg, use_cache=False)


register_dataset("tiny_shapes", DatasetSpec(
    builder=tiny_shapes, description="circles and squares on dark, dim and light backgrounds (written on first use)",
    layout="folder", directory="tiny_shapes", environments=ENVIRONMENTS, num_classes=len(CLASSES),
    counts={e: None for e in ENVIRONMENTS}, small_images=True, image_size=16),
    options={"per_class": Option(12, int, "images per class and environment", low=2),
             "seed": Option(0, int, "placement of the shapes", low=0)})


# --- an energy backend: a constant wall-socket power over the window's wall time ----------------------------
class ConstantPower:
    """Component "node" = watts x wall seconds: a plug-power model for machines with no counter."""

    name = "constant_power"
    source = "estimated:constant-power"

    def __init__(self, watts: float) -> None:
        self.watts = float(watts)

    def begin(self) -> None:
        return None

    def end(self, start: Any, seconds: float, cpu_seconds: float) -> dict[str, ComponentEnergy]:
        return {"node": ComponentEnergy(self.watts * seconds, self.source, {"watts": self.watts})}

    def describe(self) -> dict:
        return {"component": "node", "source": self.source, "params": {"watts": self.watts}}

    def close(self) -> None:
        return None


def constant_power(ctx: MeterContext) -> list:
    """The whole node at a constant `watts` while the window is open."""
    return [ConstantPower(**ctx.opts("constant_power"))]


BACKENDS.register("constant_power", constant_power, options={
    "watts": Option(60.0, float, "the node's assumed power draw", low=0.0, low_open=True)})


# --- a network: a small MLP on the flattened image -----------------------------------------------------------
class TinyMLP(nn.Module):
    def __init__(self, input_shape: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), hidden), nn.ReLU())
        self.n_outputs = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


NETWORKS.register("tiny_mlp", TinyMLP, description="one hidden ReLU layer on the flattened image",
                  options={"hidden": Option(32, int, "width of the hidden layer", low=1)})


# --- a launcher: jobs in this process, in a seeded random order ---------------------------------------------
class ShuffledLauncher(LocalLauncher):
    """Runs the jobs one after another in this process, in an order shuffled by `seed`, so that several
    sweeps sharing one queue do not all start with the same configurations."""

    name = "shuffled"

    def __init__(self, workers: int = 1, threads: int | None = None, seed: int = 0) -> None:
        super().__init__(workers, threads)
        self.seed = seed

    def launch(self, jobs, progress: Progress) -> list[JobResult]:
        order = list(jobs)
        random.Random(self.seed).shuffle(order)
        started = time.time()
        results = super().launch(order, progress)
        print(f"shuffled launcher: {len(results)} jobs in {time.time() - started:.1f} s", flush=True)
        return results


LAUNCHERS.register("shuffled", ShuffledLauncher, options={"seed": Option(0, int, "order of the jobs", low=0)})
