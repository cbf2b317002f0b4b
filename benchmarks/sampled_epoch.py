"""Cost of one GradSamp sampled epoch against its floor, on one device.

A sampled epoch = ``GradSamp.sample`` (Delta, the draw, the finiteness check, the statistics, the write)
+ ``GradSamp.observe`` (the epoch-end snapshot). The floor is the least any such epoch could do, written as
plainly as possible: per tensor one mean/std of Delta, ``randn_like`` and an add, then a snapshot clone of
every tensor, in float32 on the same device. Models: the digits CNN (``DigitsCNN(1, 32)`` + a linear head),
torchvision ResNet-18 and ResNet-50 (random weights). Each figure is the median of ``--repeats`` timed
runs after warm-up, interleaved sampled/floor; on CUDA, timed with events after a synchronize.

    python benchmarks/sampled_epoch.py [--device cuda] [--models digits resnet18 resnet50]
                                       [--samplers tensor ggd] [--repeats 20] [--history-device cpu]

``measure(device, models, repeats)`` returns the rows, for reuse by other benchmarks.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from types import SimpleNamespace
from typing import Callable

import torch
from torch import nn

from dagrad.gradsamp import GradSamp, resolve_settings

MODELS = ("digits", "resnet18", "resnet50")
SAMPLERS = ("tensor", "element", "ggd", "extrapolate", "skip")


def build(name: str) -> nn.Module:
    """One of MODELS with random weights (torchvision is imported only for the ResNets)."""
    if name == "digits":
        from dagrad.networks.featurizers import DigitsCNN

        featurizer = DigitsCNN(1, 32)
        return nn.Sequential(featurizer, nn.Linear(featurizer.n_outputs, 10))
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"


def timed(device: torch.device, fn: Callable[[], object]) -> float:
    """Milliseconds of one call of ``fn``, everything it queued on the device included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    start_s = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start_s)


def nudge(model: nn.Module, seed: int) -> None:
    """Stand-in for a trained epoch: every trainable tensor moves by a small seeded random amount."""
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=g, device=p.device, dtype=p.dtype))


def floor_epoch(params: list[torch.Tensor], deltas: list[torch.Tensor]) -> list[torch.Tensor]:
    """The floor: per tensor mean/std of Delta + randn_like + add, then a snapshot clone."""
    with torch.no_grad():
        for p, d in zip(params, deltas):
            std, mean = torch.std_mean(d)
            p.add_(mean + std * torch.randn_like(p))
        return [p.clone() for p in params]


def measure(device: str | torch.device, models: tuple[str, ...] | list[str] = MODELS, repeats: int = 20,
            samplers: tuple[str, ...] | list[str] = ("tensor",), history_device: str = "device",
            warmup: int = 3) -> list[dict]:
    """One row per (model, sampler): median sampled-epoch and floor milliseconds, their ratio, the device."""
    device = torch.device(device)
    rows = []
    for name in models:
        torch.manual_seed(0)
        model = build(name).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        deltas = [1e-3 * torch.randn_like(p) for p in params]
        for sampler in samplers:
            cfg = SimpleNamespace(sampler=sampler, schedule="periodic", schedule_options={"every": 1, "start": 0},
                                  history_device=history_device)
            gs = GradSamp(resolve_settings(cfg), run_seed=0)
            for seed in range(2):
                nudge(model, seed)
                gs.observe(model, "train")
            epoch = iter(range(2, 10**6))

            def sampled() -> None:
                out = gs.sample(model, {}, next(epoch))
                gs.observe(model, out.kind)

            sampled_ms, floor_ms = [], []
            for r in range(warmup + repeats):
                s, f = timed(device, sampled), timed(device, lambda: floor_epoch(params, deltas))
                if r >= warmup:
                    sampled_ms.append(s)
                    floor_ms.append(f)
            s, f = statistics.median(sampled_ms), statistics.median(floor_ms)
            rows.append({"model": name, "params": sum(p.numel() for p in params), "sampler": sampler,
                         "history": history_device, "sampled_ms": s, "floor_ms": f, "ratio": s / f,
                         "device": device_name(device)})
        del model, params, deltas
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--samplers", nargs="+", default=["tensor"], choices=SAMPLERS)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--history-device", default="device", choices=("device", "cpu"))
    args = parser.parse_args()
    rows = measure(args.device, args.models, args.repeats, args.samplers, args.history_device)
    print(f"{'model':<9} {'params':>11} {'sampler':<11} {'history':<7} {'sampled ms':>11} {'floor ms':>9} "
          f"{'ratio':>6}  device")
    for r in rows:
        print(f"{r['model']:<9} {r['params']:>11,} {r['sampler']:<11} {r['history']:<7} {r['sampled_ms']:>11.2f} "
              f"{r['floor_ms']:>9.2f} {r['ratio']:>6.2f}  {r['device']}")
    print(f"median of {args.repeats} repeats after warm-up; torch {torch.__version__}")


if __name__ == "__main__":
    main()
