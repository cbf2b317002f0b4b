"""dagrad's engine against bare DomainBed-style PyTorch loops on the same work, on this machine's device.

1. Training loop: the engine's step loop (`Trainer._train_steps`: its data stream, FLOP tally, device-side
   statistics) against DomainBed's: one InfiniteDataLoader per training environment (a RandomSampler with
   replacement in a BatchSampler, the same workers), one minibatch of each per step, ERM's update with
   `loss.item()` every step. Same model (a copy of the engine's, same initial weights), same datasets,
   batch size and optimizer (Adam, same hyperparameters). Interleaved repeats; medians of s/step.
2. Evaluation: `dagrad.run.evaluation.evaluate` (one loader over every split, batch `data.eval_batch_size`)
   against DomainBed's: one FastDataLoader per split at batch 64 with the same workers, accuracy read
   with `.item()` per batch. Images per second (dagrad also computes the loss; DomainBed does not).
3. Startup: `dagrad train -c demo` from the command to its first training step, against the floor any
   PyTorch training script pays (`import torch` and constructing Adam, which imports torch._dynamo).
4. Settings: s/step and energy/step of the engine's loop under each precision, determinism and layout.

Every figure is measured here and printed with the device it ran on: wall seconds, this process's CPU
seconds (steadier on a shared machine; data workers' CPU is not in it, but is in the energy), and energy
from the meter `build_meter` picks (NVML on a GPU, else RAPL or the labelled CPU-time estimate).

    python benchmarks/engine_overhead.py [--device cpu|cuda] [--steps 25] [--repeats 5] [--workers 0]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from dagrad.config.schema import EnergyConfig
from dagrad.energy import build_meter, resolve_energy
from dagrad.energy.hardware import cpu_model, usable_cpus
from dagrad.run.engine import Trainer
from dagrad.run.evaluation import evaluate
from dagrad.config.experiment import load_experiment

warnings.filterwarnings("ignore", message=".*ESTIMATED.*")
DEMO = ["-c", "demo"]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return (f"CPU {cpu_model()}, {usable_cpus()} usable cores, {torch.get_num_threads()} torch thread(s) "
            f"(torch {torch.__version__})")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timed:
    """Wall seconds, this process's CPU seconds and metered joules of a block (device synchronised)."""

    def __init__(self, meter: Any, device: torch.device):
        self.meter, self.device = meter, device

    def __call__(self, fn: Callable[[], Any]) -> dict:
        sync(self.device)
        with self.meter.window("bench") as reading:
            c0 = time.process_time()
            fn()
            sync(self.device)
            cpu = time.process_time() - c0
        return {"wall": reading.seconds, "cpu": cpu, "joules": reading.joules, "sources": reading.sources}


# ---------------------------------------------------------------- DomainBed-style bare loops
class _Infinite:
    """DomainBed's _InfiniteSampler: a batch sampler repeated forever."""

    def __init__(self, sampler: BatchSampler):
        self.sampler = sampler

    def __iter__(self):
        while True:
            yield from self.sampler


class BareSplit(Dataset):
    """What DomainBed's datasets return: (transform(input), label), nothing else."""

    def __init__(self, split: Any):
        self.env, self.indices, self.transform = split.env, split.indices, split.transform
        self.labels = split.env.labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        i = int(self.indices[k])
        x = self.env.load(i)
        return (self.transform(x) if self.transform is not None else x), int(self.labels[i])


def infinite_loader(dataset: Dataset, batch_size: int, workers: int) -> Any:
    """DomainBed's InfiniteDataLoader (uniform weights: RandomSampler with replacement)."""
    sampler = RandomSampler(dataset, replacement=True)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=True)
    return iter(DataLoader(dataset, num_workers=workers, batch_sampler=_Infinite(batches)))


class FastLoader:
    """DomainBed's FastDataLoader: one persistent iterator, len(batch_sampler) batches per pass."""

    def __init__(self, dataset: Dataset, batch_size: int, workers: int):
        batches = BatchSampler(RandomSampler(dataset, replacement=False), batch_size=batch_size, drop_last=False)
        self._iterator = iter(DataLoader(dataset, num_workers=workers, batch_sampler=_Infinite(batches)))
        self._length = len(batches)

    def __iter__(self):
        for _ in range(self._length):
            yield next(self._iterator)


def bare_erm_step(network: torch.nn.Module, optimizer: torch.optim.Optimizer, iterators: list,
                  device: torch.device) -> float:
    """DomainBed's train.py step with ERM.update: next minibatch of every env, cat, CE, Adam, loss.item()."""
    minibatches = [(x.to(device), y.to(device)) for x, y in (next(it) for it in iterators)]
    all_x = torch.cat([x for x, _ in minibatches])
    all_y = torch.cat([y for _, y in minibatches])
    loss = F.cross_entropy(network(all_x), all_y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def bare_accuracy(network: torch.nn.Module, loaders: list, device: torch.device) -> int:
    """DomainBed's misc.accuracy over every split; returns how many images it saw."""
    network.eval()
    seen = 0
    for loader in loaders:
        correct = total = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            p = network(x)
            correct += p.argmax(1).eq(y).float().sum().item()
            total += float(len(x))
            seen += len(x)
    network.train()
    return seen


# ---------------------------------------------------------------- sections
def trainer_for(device: torch.device, steps: int, workers: int, out: Path, *overrides: str) -> Trainer:
    exp = load_experiment(["demo"], [f"device={device.type}", f"steps_per_epoch={steps}", f"data.num_workers={workers}",
                                     *overrides])
    return Trainer(exp, out, progress=False)


def training_loop(device: torch.device, steps: int, repeats: int, workers: int, out: Path, timed: Timed) -> None:
    trainer = trainer_for(device, steps, workers, out / "train")
    algorithm = trainer.algorithm
    network = copy.deepcopy(algorithm.network)
    optimizer = torch.optim.Adam(network.parameters(), lr=algorithm.hparams["lr"],
                                 weight_decay=algorithm.hparams["weight_decay"])
    data = trainer.data
    iterators = [infinite_loader(BareSplit(data.splits[f"env{i}_in"]), data.batch_size, workers)
                 for i in data.train_envs]
    restore = trainer.numerics.apply()  # both loops under DomainBed's flags (deterministic cuDNN)
    try:
        trainer._train_steps(0)  # warm-up: FLOP counting, allocator, workers
        for _ in range(steps):
            bare_erm_step(network, optimizer, iterators, device)
        runs: dict[str, list[dict]] = {"dagrad": [], "bare": []}
        for r in range(repeats):
            runs["dagrad"].append(timed(lambda: trainer._train_steps(1 + r)))
            runs["bare"].append(timed(lambda: [bare_erm_step(network, optimizer, iterators, device)
                                               for _ in range(steps)]))
    finally:
        restore()
        trainer.meter.close()
    envs = len(data.train_envs)
    print(f"\n1. Training loop: digits CNN (width 32, {data.input_shape[-1]} px), ERM, {envs} envs x batch "
          f"{data.batch_size}, {workers} workers, {steps} steps per repeat, median of {repeats} interleaved repeats")
    _compare(runs, steps, "s/step", "step")


def _compare(runs: dict[str, list[dict]], per: int, unit: str, noun: str) -> None:
    med = {name: {k: statistics.median(r[k] for r in rs) / per for k in ("wall", "cpu")} for name, rs in runs.items()}
    for name, rs in runs.items():
        joules = [r["joules"] for r in rs if r["joules"] is not None]
        energy = f"{statistics.median(joules) / per:.4f} J/{noun} ({', '.join(rs[0]['sources'])})" if joules else "–"
        print(f"  {name:7s} wall {med[name]['wall']:.5f} {unit}  main-process cpu {med[name]['cpu']:.5f} {unit}  "
              f"{energy}")
    for k in ("wall", "cpu"):
        print(f"  dagrad / bare ({k}): {med['dagrad'][k] / med['bare'][k]:.3f} "
              f"({100 * (med['dagrad'][k] / med['bare'][k] - 1):+.1f} %)")


def evaluation(device: torch.device, repeats: int, workers: int, out: Path, timed: Timed) -> None:
    trainer = trainer_for(device, 1, workers, out / "eval")
    model, data = trainer.algorithm, trainer.data
    network = copy.deepcopy(model.network)
    loaders = [FastLoader(BareSplit(split), 64, workers) for split in data.eval_splits().values()]
    images = sum(len(s) for s in data.eval_splits().values())
    restore = trainer.numerics.apply()
    try:
        evaluate(model, trainer.eval_loader, device, trainer.flops, trainer.numerics)  # warm-up (workers start)
        bare_accuracy(network, loaders, device)
        runs: dict[str, list[dict]] = {"dagrad": [], "bare": []}
        for _ in range(repeats):
            runs["dagrad"].append(timed(lambda: evaluate(model, trainer.eval_loader, device, trainer.flops,
                                                         trainer.numerics)))
            runs["bare"].append(timed(lambda: bare_accuracy(network, loaders, device)))
    finally:
        restore()
        trainer.meter.close()
    print(f"\n2. Evaluation: {len(loaders)} splits, {images} images, dagrad batch {data.eval_batch_size} through one "
          f"loader vs DomainBed batch 64 through one loader per split, {workers} workers, median of {repeats}")
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        print(f"  {name:7s} {images / wall:9.0f} images/s (wall)  {images / cpu:9.0f} images/s (main-process cpu)")
    ratio = statistics.median(r["wall"] for r in runs["bare"]) / statistics.median(r["wall"] for r in runs["dagrad"])
    print(f"  dagrad / bare images/s: {ratio:.3f} (wall)")


_FIRST_STEP = """
import os, sys, time
import dagrad.algorithms.erm as erm
from dagrad.cli import main
def first(self, *a, **k):
    print(f"FIRST_STEP {time.time()} {time.process_time()}", flush=True)
    os._exit(0)
erm.ERM.update = first
main(sys.argv[1:])
"""
_FLOOR = """
import time, torch
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
print(f"FIRST_STEP {time.time()} {time.process_time()}", flush=True)
"""


def _child(code: str, args: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env).stdout
    line = next(x for x in out.splitlines() if x.startswith("FIRST_STEP"))
    _, at, cpu = line.split()
    return float(at) - started, float(cpu)


def startup(repeats: int, out: Path) -> None:
    results: dict[str, list[tuple[float, float]]] = {"dagrad train -c demo": [], "floor (torch + Adam)": []}
    for r in range(repeats):
        results["dagrad train -c demo"].append(
            _child(_FIRST_STEP, ["train", "-c", "demo", "--quiet", "--out", str(out / f"startup{r}")]))
        results["floor (torch + Adam)"].append(_child(_FLOOR, []))
    print(f"\n3. Startup: from the command to the first training step, {repeats} runs each (wall | process CPU)")
    for name, values in results.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(f"  {name:22s} median {statistics.median(walls):5.2f} s | {statistics.median(cpus):5.2f} s CPU   "
              f"min {min(walls):5.2f} s | {min(cpus):5.2f} s CPU")


SETTINGS = [
    ("torch_default, deterministic", []),
    ("fp32_strict", ["precision=fp32_strict"]),
    ("tf32", ["precision=tf32"]),
    ("bf16", ["precision=bf16"]),
    ("torch_default, deterministic=false", ["deterministic=false"]),
    ("torch_default, channels_last", ["channels_last=true"]),
    ("bf16, deterministic=false, channels_last", ["precision=bf16", "deterministic=false", "channels_last=true"]),
]


def settings(device: torch.device, steps: int, repeats: int, workers: int, out: Path, timed: Timed) -> None:
    print(f"\n4. Settings: the engine's training loop, digits CNN, {steps} steps, median of {repeats}")
    for k, (label, overrides) in enumerate(SETTINGS):
        trainer = trainer_for(device, steps, workers, out / f"setting{k}", *overrides)
        restore = trainer.numerics.apply()
        try:
            trainer._train_steps(0)
            rs = [timed(lambda: trainer._train_steps(1 + r)) for r in range(repeats)]
        finally:
            restore()
            trainer.meter.close()
        wall = statistics.median(r["wall"] for r in rs) / steps
        joules = [r["joules"] for r in rs if r["joules"] is not None]
        energy = f"{statistics.median(joules) / steps:.4f} J/step ({', '.join(rs[0]['sources'])})" if joules else "–"
        print(f"  {label:42s} {wall:.5f} s/step  {energy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=25, help="training steps per repeat (the demo's epoch)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0, help="data workers (the demo's digits use 0)")
    parser.add_argument("--startup-repeats", type=int, default=3)
    parser.add_argument("--sections", default="train,eval,startup,settings")
    args = parser.parse_args()
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    meter = build_meter(resolve_energy(EnergyConfig()), str(device))
    timed = Timed(meter, device)
    print(f"device: {device_name(device)}")
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if "train" in sections:
            training_loop(device, args.steps, args.repeats, args.workers, out, timed)
        if "eval" in sections:
            evaluation(device, args.repeats, args.workers, out, timed)
        if "startup" in sections:
            startup(args.startup_repeats, out)
        if "settings" in sections:
            settings(device, args.steps, max(1, args.repeats // 2), args.workers, out, timed)
    meter.close()


if __name__ == "__main__":
    main()
