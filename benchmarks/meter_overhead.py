"""How much does an energy window cost? Prints per-window overhead and its share of a training epoch.

1. Window cost: enter+exit of `meter.window()` with an empty body, averaged over many windows.
2. Epoch share: a small digits-like CNN (GroupNorm, 28x28 inputs) trained for `--steps` steps of
   `--batch` images, timed with and without a window around the steps (interleaved, medians).
The meter is the one `build_meter` picks on this machine (backend=auto). Target: <= 1 % per epoch.

    .venv/bin/python benchmarks/meter_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from types import SimpleNamespace

import torch
from torch import nn

from dagrad.energy import build_meter, resolve_energy


def energy_config() -> object:
    try:
        from dagrad.config.schema import EnergyConfig

        return EnergyConfig()
    except ImportError:
        return SimpleNamespace(backend="auto", watts_per_thread=4.0, cpu_tdp_w=None,
                               grid_intensity_g_per_kwh=None, nvml_poll_hz=10.0, count_flops=True)


def digits_cnn(channels: int = 64, in_channels: int = 3, classes: int = 10) -> nn.Module:
    """Three 3x3 conv blocks with GroupNorm (28 -> 14 -> 7), global pooling, linear head."""
    half = channels // 2

    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.ReLU()]

    return nn.Sequential(*block(in_channels, half, 1), *block(half, channels, 2), *block(channels, channels, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def window_cost_us(meter, n: int) -> float:
    for _ in range(min(n, 200)):  # warm-up
        with meter.window("w"):
            pass
    t0 = time.perf_counter()
    for _ in range(n):
        with meter.window("w"):
            pass
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=80)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = build_meter(resolve_energy(energy_config()), "cpu")
    desc = meter.describe()
    print(f"meter: {', '.join(desc['selected'])} ({desc['cpu_seconds_scope']}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {desc['hardware']['cpu_model']}")
    for w in caught:
        print(f"  (warning at build: {str(w.message)[:90]}...)")

    per_window = window_cost_us(meter, args.windows)
    print(f"window enter+exit: {per_window:.1f} us (mean of {args.windows} empty windows)")

    torch.manual_seed(0)
    model = digits_cnn(args.channels)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 3, 28, 28)
    y = torch.randint(0, 10, (args.batch,))

    def epoch() -> None:
        for _ in range(args.steps):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    epoch()  # warm-up: allocator, kernels
    plain, windowed = [], []
    for _ in range(args.repeats):  # interleaved so drift and neighbours hit both alike
        t0 = time.perf_counter()
        epoch()
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with meter.window("train"):
            epoch()
        windowed.append(time.perf_counter() - t0)
    meter.close()

    p, w = statistics.median(plain), statistics.median(windowed)
    print(f"epoch ({args.steps} steps x batch {args.batch}, {args.channels}-channel GroupNorm CNN, 28 px), "
          f"{args.repeats} repeats each:")
    print(f"  plain        median {p:.3f} s  (min {min(plain):.3f}, max {max(plain):.3f})")
    print(f"  with window  median {w:.3f} s  (min {min(windowed):.3f}, max {max(windowed):.3f})")
    print(f"overhead per epoch: difference of medians {(w - p) / p * 100:+.3f} %, of minima "
          f"{(min(windowed) - min(plain)) / min(plain) * 100:+.3f} % (both noise-dominated on a shared machine); "
          f"window cost / median epoch {per_window * 1e-6 / p * 100:.4f} %")


if __name__ == "__main__":
    main()
